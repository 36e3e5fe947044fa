import LKJWTTestSupport
import Testing

@testable import LKJWTLogic

/// The one rule for "a scheduler is alive" that cold-start detection and the CGI warning share.
struct JobSchedulerTests {
    static let now: Int64 = 1_700_000_000_000

    @Test func aSchedulerIsAliveWhileTheNewestHeartbeatIsFresh() {
        #expect(!JobScheduler.isAlive(heartbeat: nil, now: Self.now))
        #expect(JobScheduler.isAlive(heartbeat: Self.now - JobScheduler.heartbeatTimeout.milliseconds, now: Self.now))
        #expect(!JobScheduler.isAlive(heartbeat: Self.now - JobScheduler.heartbeatTimeout.milliseconds - 1, now: Self.now))
        // Written by a host whose clock is a little ahead.
        #expect(JobScheduler.isAlive(heartbeat: Self.now + 1_000, now: Self.now))
    }

    @Test func anyStoredHeartbeatComparesWithoutTrapping() {
        #expect(!JobScheduler.isAlive(heartbeat: .min, now: .max))
        #expect(JobScheduler.isAlive(heartbeat: .max, now: .min))
    }
}

struct BlockingMutexTests {
    @Test func concurrentUpdatesAreNotLost() {
        let counter = BlockingMutex(0)
        DispatchApply.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 { counter.withLock { $0 += 1 } }
        }
        #expect(counter.withLock { $0 } == 80_000)
    }

    struct Failure: Error, Equatable {}

    @Test func aThrowingBodyLeavesTheLockFreeAndTheValueAsItLeftIt() {
        let value = BlockingMutex([1])
        #expect(throws: Failure()) {
            try value.withLock { (array: inout [Int]) throws(Failure) in
                array.append(2)
                throw Failure()
            }
        }
        #expect(value.withLock { $0 } == [1, 2])
    }
}
