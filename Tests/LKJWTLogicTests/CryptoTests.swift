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
