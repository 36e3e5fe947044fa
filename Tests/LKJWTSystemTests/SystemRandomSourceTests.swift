import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

struct SystemRandomSourceTests {
    @Test func randomBytesHaveTheRequestedLengthAndVary() {
        let random = SystemRandomSource()
        #expect(random.bytes(16).count == 16)
        #expect(random.bytes(16) != random.bytes(16))
        let unit = random.unitInterval()
        #expect(unit >= 0 && unit < 1)
    }
}
