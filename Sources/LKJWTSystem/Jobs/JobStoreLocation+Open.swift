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
        case .redis(let url):
            return try RedisJobStore(url: url)
        }
    }
}
