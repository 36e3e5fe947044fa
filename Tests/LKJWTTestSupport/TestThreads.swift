import Glibc

/// Runs a closure on many threads at once.
package enum DispatchApply {
    package static func concurrentPerform(iterations: Int, _ body: @escaping @Sendable (Int) -> Void) {
        var threads: [Thread] = []
        for index in 0..<iterations {
            threads.append(Thread { body(index) })
        }
        threads.forEach { $0.join() }
    }
}

/// A bare pthread, since tests must exercise the same blocking-thread model as the service.
package final class Thread {
    private var handle = pthread_t()

    package init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&handle, nil, { context in
            Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
            return nil
        }, box)
    }

    package func join() {
        pthread_join(handle, nil)
    }

    private final class Box {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
}
