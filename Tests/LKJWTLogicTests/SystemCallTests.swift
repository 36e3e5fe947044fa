import Glibc
import Testing

@testable import LKJWTLogic

struct SystemCallTests {
    @Test func aFailedCallThrowsItsOwnErrno() {
        #expect(throws: SystemCallError("close", errno: EBADF)) { try SystemCall.run("close") { close(-1) } }
        #expect(throws: SystemCallError("open", errno: ENOENT)) { try SystemCall.pointer("open") { fopen("/nonexistent/lkjwt", "rb") } }
        #expect(SystemCallError("open", errno: ENOENT).description == "open: No such file or directory")
    }

    @Test func aSucceedingCallGivesItsResult() throws {
        var descriptors: [Int32] = [0, 0]
        #expect(try SystemCall.run("pipe") { pipe(&descriptors) } == 0)
        defer { descriptors.forEach { close($0) } }
        #expect(try SystemCall.run("write") { write(descriptors[1], "x", 1) } == 1)
    }

    @Test func aSemaphoreWaitEndsAtItsTimeoutOrItsSignal() {
        let semaphore = Semaphore()
        let start = ContinuousClock.now
        #expect(!semaphore.wait(timeout: .milliseconds(50)))
        #expect(ContinuousClock.now - start >= .milliseconds(50))
        semaphore.signal()
        semaphore.signal()
        #expect(semaphore.wait(timeout: .milliseconds(10_000)))
        #expect(semaphore.wait(timeout: .milliseconds(0)))
        #expect(!semaphore.wait(timeout: .milliseconds(0)))
    }
}
