import LKJWTLogic

extension JobStoreLocation {
    /// Opens the configured store (start-up step 3, contract §1.4); errors carry the §2.3 texts.
    public func open() throws(ConfigurationError) -> any JobStore {
        switch self {
        case .memory:
            return InMemoryJobStore()
        case .sqlite(let path):
            do {
                return try SQLiteJobStore(path: path)
            } catch {
                throw .jobsDatabaseUnavailable(path: path, detail: error.message)
            }
        case .redis(let text):
            // The URL's password is masked in every text of §2.3 rows 8 and 9.
            let printable = JobStoreLocation.maskingPassword(in: text)
            let url: RedisURL
            do throws(RedisURL.ParseError) {
                url = try RedisURL(parsing: text)
            } catch {
                throw .invalidRedisURL(printable, detail: error.description)
            }
            guard !url.tls || RedisJobStore.supportsTLS else { throw .invalidRedisURL(printable, detail: "TLS to Redis is not supported by this build") }
            do {
                return try RedisJobStore(url: url)
            } catch {
                throw .redisPingFailed(detail: error.message)
            }
        }
    }
}
