import LKJWTTestSupport
import Synchronization
import Testing

@testable import LKJWTLogic

struct CryptoTests {
    @Test func sha256OfKnownInput() {
        let digest = Digest.sha256(Array("abc".utf8))
        #expect(digest.map { String(format2: $0) }.joined() == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let empty = Digest.sha256([])
        #expect(empty.map { String(format2: $0) }.joined() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    /// RFC 4231 test case 2.
    @Test func hmacSHA256OfRFC4231Case2() {
        let mac = Digest.hmacSHA256(key: Array("Jefe".utf8), message: Array("what do ya want for nothing?".utf8))
        #expect(mac.map { String(format2: $0) }.joined() == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// One prepared key for many messages (RFC 4231 cases 1 and 2 share none, so two keys): each
    /// message is authenticated from the keyed state, not from what an earlier message left in it.
    @Test func preparedKeyAuthenticatesEachMessageAfresh() {
        let key = HMACKey("Jefe")
        let message = Array("what do ya want for nothing?".utf8)
        let expected = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        #expect(key.authenticationCode(message).map { String(format2: $0) }.joined() == expected)
        _ = key.authenticationCode(Array("something else".utf8))
        #expect(key.authenticationCode(message).map { String(format2: $0) }.joined() == expected)
        let case1 = HMACKey([UInt8](repeating: 0x0b, count: 20))
        #expect(case1.authenticationCode(Array("Hi There".utf8)).map { String(format2: $0) }.joined()
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    /// An empty key is valid HMAC (the key is zero-padded), as Go's crypto/hmac computes it.
    @Test func emptyKeyAndEmptyMessage() {
        let key = HMACKey([UInt8]())
        #expect(key.isEmpty)
        #expect(key.authenticationCode([UInt8]()).map { String(format2: $0) }.joined()
            == "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad")
    }

    /// Threads racing on a key's first use all get the right code (one keyed context is kept).
    @Test func concurrentFirstUse() {
        let key = HMACKey("Jefe")
        let message = Array("what do ya want for nothing?".utf8)
        let results = Mutex<[String]>([])
        let threads = (0..<8).map { _ in
            Thread {
                let code = key.authenticationCode(message).map { String(format2: $0) }.joined()
                results.withLock { $0.append(code) }
            }
        }
        for thread in threads { thread.join() }
        #expect(results.withLock { $0 } == Array(repeating: "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", count: 8))
    }

    @Test func constantTimeComparison() {
        #expect(Digest.constantTimeEquals([1, 2, 3], [1, 2, 3]))
        #expect(!Digest.constantTimeEquals([1, 2, 3], [1, 2, 4]))
        #expect(!Digest.constantTimeEquals([1, 2, 3], [1, 2]))
        #expect(Digest.constantTimeEquals([], []))
    }

    @Test(arguments: [
        ("", "", ""), ("f", "Zg==", "Zg"), ("fo", "Zm8=", "Zm8"), ("foo", "Zm9v", "Zm9v"), ("foob", "Zm9vYg==", "Zm9vYg"),
    ])
    func base64Variants(input: String, padded: String, url: String) {
        #expect(Base64.standard(Array(input.utf8), padded: true) == padded)
        #expect(Base64.url(Array(input.utf8)) == url)
        #expect(Base64.decodeURL(url) == Array(input.utf8))
    }

    @Test func base64URLUsesDashAndUnderscore() {
        #expect(Base64.url([0xFB, 0xFF]) == "-_8")
        #expect(Base64.standard([0xFB, 0xFF], padded: false) == "+/8")
        #expect(Base64.decodeURL("+/8") == nil)
        #expect(Base64.decodeURL("abcde") == nil)
    }
}

extension String {
    init(format2 byte: UInt8) {
        let hex = String(byte, radix: 16)
        self = hex.count == 1 ? "0" + hex : hex
    }
}
