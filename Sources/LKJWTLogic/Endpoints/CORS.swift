/// Headers every answer of the three JSON endpoints carries, errors and preflights included (§3.2):
/// browsers on any origin (Element Call is a web app) must be able to read them.
enum CORS {
    static let headers: HTTPHeaders = [
        ("Content-Type", "application/json"),
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "POST"),
        ("Access-Control-Allow-Headers", "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token"),
    ]
}
