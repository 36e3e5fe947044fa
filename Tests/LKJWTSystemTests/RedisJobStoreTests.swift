import Glibc
import LKJWTTestSupport
import Testing

@testable import LKJWTLogic
@testable import LKJWTSystem

struct RedisTestSetupError: Error, CustomStringConvertible {
    let description: String
}

/// A real `redis-server` on a free loopback port, started for one test and stopped by PID with
/// `stop()`. A missing binary fails the test: skipping would hide that the Redis store went untested.
final class RedisServer {
    let port: Int
    let unixSocket: String?
    private let password: String?
    private let pid: pid_t

    init(password: String? = nil, unixSocket: Bool = false) throws {
        self.password = password
        (port, pid, self.unixSocket) = try Self.launch(password: password, unixSocket: unixSocket)
    }

    var url: String { "redis://127.0.0.1:\(port)" }

    func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        if let unixSocket { unlink(unixSocket) }
    }

    /// Runs `redis-cli` against this server: an independent view of what the store wrote.
    func cli(_ arguments: [String], database: Int = 0) throws -> String {
        var options = ["-h", "127.0.0.1", "-p", String(port), "-n", String(database), "--raw", "--no-auth-warning"]
        if let password { options += ["-a", password] }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw RedisTestSetupError(description: "pipe failed") }
        let child: pid_t
        do {
            defer { close(pipeEnds[1]) }
            child = try Self.spawn(Self.executable("redis-cli"), options + arguments, output: pipeEnds[1])
        } catch {
            close(pipeEnds[0])
            throw error
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while case let count = read(pipeEnds[0], &buffer, buffer.count), count > 0 { output += buffer[..<count] }
        close(pipeEnds[0])
        var status: Int32 = 0
        waitpid(child, &status, 0)
        var text = String(decoding: output, as: UTF8.self)
        if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    /// The chosen port can be taken before redis-server binds it (as the ephemeral port of some client
    /// connection); the server then exits and another port is tried.
    private static func launch(password: String?, unixSocket: Bool) throws -> (port: Int, pid: pid_t, unixSocket: String?) {
        let executable = try executable("redis-server")
        for _ in 0..<5 {
            let port = try freePort()
            let socket = unixSocket ? "/tmp/lkjwt-redis-test-\(getpid())-\(port).sock" : nil
            var arguments = ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--daemonize", "no"]
            arguments += ["--loglevel", "warning"]
            if let password { arguments += ["--requirepass", password] }
            if let socket { arguments += ["--unixsocket", socket, "--unixsocketperm", "700"] }
            let discard = open("/dev/null", O_WRONLY)
            defer { close(discard) }
            let pid = try spawn(executable, arguments, output: discard)
            if try answersPing(pid: pid, port: port) { return (port, pid, socket) }
        }
        throw RedisTestSetupError(description: "redis-server exited at start-up five times in a row")
    }

    /// False if the server exited instead. A server requiring a password answers NOAUTH: still up.
    private static func answersPing(pid: pid_t, port: Int) throws -> Bool {
        for _ in 0..<500 {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == 0 else { return false }
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(descriptor) }
            var address = loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            var buffer = [UInt8](repeating: 0, count: 64)
            if connected == 0, write(descriptor, "PING\r\n", 6) == 6, case let count = read(descriptor, &buffer, buffer.count), count > 0 {
                let reply = String(decoding: buffer[..<count], as: UTF8.self)
                if reply.hasPrefix("+PONG") || reply.hasPrefix("-NOAUTH") { return true }
            }
            usleep(20_000)
        }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        throw RedisTestSetupError(description: "redis-server did not answer PING on port \(port) within 10 s")
    }

    /// A port the kernel just handed out and released; reuse by someone else in between is unlikely.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw RedisTestSetupError(description: "no free loopback port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// posix_spawn with an empty signal mask and default dispositions: tests run on dispatch worker
    /// threads, which block most signals, and a child inherits that (redis-server would never see SIGTERM).
    private static func spawn(_ executable: String, _ arguments: [String], output: Int32) throws -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, output, 1)
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard status == 0 else { throw RedisTestSetupError(description: "cannot start \(executable): \(String(cString: strerror(status)))") }
        return pid
    }

    private static func executable(_ name: String) throws -> String {
        let path = getenv("PATH").map { String(cString: $0) } ?? ""
        let directories = path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin", "/usr/local/bin"]
        guard let found = directories.map({ (directory: String) -> String in "\(directory)/\(name)" }).first(where: { access($0, X_OK) == 0 }) else {
            throw RedisTestSetupError(description: "\(name) is not installed (Debian: apt-get install redis-server); the Redis job store tests need a real server")
        }
        return found
    }
}

struct RedisJobStoreTests {
    private static func openingError(_ url: String) -> String? {
        do {
            _ = try JobStoreLocation.redis(url: url).open()
            return nil
        } catch {
            return error.message
        }
    }

    /// A record as upstream lk-jwt-service writes it: no `Engine`.
    private static let upstreamRecord = """
        {"Params":{"DelayId":"syd_up","DelayTimeout":8000000000,"ServerName":"example.org","LiveKitRoom":"room","LiveKitIdentity":"upstream"},\
        "RestartedAt":"2025-06-01T12:00:00.123456789+02:00"}
        """

    /// Runs `body` against a store on a fresh server, which is stopped afterwards: most tests' set-up.
    static func withStoreOnAFreshServer(_ body: (RedisServer, RedisJobStore) throws -> Void) throws {
        let server = try RedisServer()
        defer { server.stop() }
        try body(server, RedisJobStore(url: server.url))
    }

    @Test func conformsToTheStoreContract() throws {
        try Self.withStoreOnAFreshServer { server, store in
            try JobStoreConformance(store: store, secondConnection: RedisJobStore(url: server.url)).runJobChecks()
        }
    }

    @Test(arguments: [
        ("redis://localhost", RedisURL(endpoint: .tcp(host: "localhost", port: 6379))),
        ("redis://", RedisURL(endpoint: .tcp(host: "localhost", port: 6379))),
        ("REDIS://Cache.example.org:", RedisURL(endpoint: .tcp(host: "Cache.example.org", port: 6379))),
        ("redis://cache:6380/2", RedisURL(endpoint: .tcp(host: "cache", port: 6380), database: 2)),
        ("redis://cache/", RedisURL(endpoint: .tcp(host: "cache", port: 6379))),
        ("redis://cache/1?db=5", RedisURL(endpoint: .tcp(host: "cache", port: 6379), database: 5)),
        ("redis://:secret@cache", RedisURL(endpoint: .tcp(host: "cache", port: 6379), password: "secret")),
        ("redis://user:p%40ss%2F@cache:7000/1", RedisURL(endpoint: .tcp(host: "cache", port: 7000), username: "user", password: "p@ss/", database: 1)),
        ("redis://user:p@ss@cache", RedisURL(endpoint: .tcp(host: "cache", port: 6379), username: "user", password: "p@ss")),
        ("redis://user@cache", RedisURL(endpoint: .tcp(host: "cache", port: 6379), username: "user")),
        ("redis://[::1]:7001/3", RedisURL(endpoint: .tcp(host: "::1", port: 7001), database: 3)),
        ("redis://[2001:db8::5]", RedisURL(endpoint: .tcp(host: "2001:db8::5", port: 6379))),
        ("rediss://:pw@cache:6380", RedisURL(endpoint: .tcp(host: "cache", port: 6380), tls: true, password: "pw")),
        ("unix:///run/redis/redis.sock", RedisURL(endpoint: .unix(path: "/run/redis/redis.sock"))),
        ("unix:///run/redis/redis.sock?db=3", RedisURL(endpoint: .unix(path: "/run/redis/redis.sock"), database: 3)),
        ("unix://:pw@/run/redis%20x.sock", RedisURL(endpoint: .unix(path: "/run/redis x.sock"), password: "pw")),
    ])
    func parsesURLForms(text: String, expected: RedisURL) throws {
        #expect(try RedisURL(parsing: text) == expected)
    }

    @Test(arguments: [
        ("localhost:6379", "missing scheme, expected redis://, rediss:// or unix://"),
        ("http://cache", "unsupported scheme \"http\", expected redis, rediss or unix"),
        ("redis://cache:abc", "invalid port \"abc\""),
        ("redis://cache:0", "invalid port \"0\""),
        ("redis://cache:65536", "invalid port \"65536\""),
        ("redis://cache/x", "invalid database number \"x\""),
        ("redis://cache/-1", "invalid database number \"-1\""),
        ("redis://cache/1/2", "invalid URL path \"/1/2\""),
        ("redis://cache?db=", "invalid database number \"\""),
        ("redis://cache?timeout=5", "unsupported option \"timeout\", only db is supported"),
        ("redis://::1", "IPv6 host \"::1\" must be in brackets"),
        ("redis://[::1", "missing ] in host \"[::1\""),
        ("unix://cache/run/redis.sock", "a unix socket URL has no host, got \"cache\"; write unix:///path"),
        ("unix://", "empty unix socket path"),
        ("rediss://cache", "TLS to Redis is not supported by this build"),
    ])
    func rejectsMalformedURLs(text: String, detail: String) {
        #expect(Self.openingError(text) == "Could not connect Redis store: store: invalid Redis URL \"\(text)\": \(detail)")
    }

    @Test func errorTextsNeverShowThePassword() {
        #expect(
            Self.openingError("redis://:se%zz@cache")
                == "Could not connect Redis store: store: invalid Redis URL \"redis://:***@cache\": invalid percent-encoding: % must be followed by two hex digits")
    }

    @Test func unreachableServerFailsThePing() throws {
        let port = try RedisServer.freePort()
        #expect(
            Self.openingError("redis://127.0.0.1:\(port)")
                == "Could not connect Redis store: store: Redis ping failed: connect to 127.0.0.1:\(port): Connection refused")
        #expect(
            Self.openingError("unix:///nonexistent/redis.sock")
                == "Could not connect Redis store: store: Redis ping failed: connect to /nonexistent/redis.sock: No such file or directory")
    }

    @Test func authenticatesWithThePassword() throws {
        let server = try RedisServer(password: "s3cret pass")
        defer { server.stop() }
        let store = try RedisJobStore(url: "redis://:s3cret%20pass@127.0.0.1:\(server.port)")
        let job = JobStoreConformance.job()
        try store.update(job.key) { $0 = job }
        #expect(try server.cli(["HLEN", "lk-jwt:jobs"]) == "1")

        let missing = try #require(Self.openingError(server.url))
        #expect(missing.hasPrefix("Could not connect Redis store: store: Redis ping failed: NOAUTH"))
        let wrong = try #require(Self.openingError("redis://:wrong@127.0.0.1:\(server.port)"))
        #expect(wrong.hasPrefix("Could not connect Redis store: store: Redis ping failed: AUTH: WRONGPASS"))
    }

    @Test func usesTheDatabaseOfThePath() throws {
        let server = try RedisServer()
        defer { server.stop() }
        let store = try RedisJobStore(url: server.url + "/3")
        let job = JobStoreConformance.job()
        try store.update(job.key) { $0 = job }
        #expect(try server.cli(["HLEN", "lk-jwt:jobs"], database: 3) == "1")
        #expect(try server.cli(["HLEN", "lk-jwt:jobs"], database: 0) == "0")
        #expect(try RedisJobStore(url: server.url).update(job.key) { $0 } == nil)
        #expect(try RedisJobStore(url: server.url + "?db=3").update(job.key) { $0?.jobID } == job.jobID)
    }

    @Test func connectsThroughAUnixSocket() throws {
        let server = try RedisServer(unixSocket: true)
        defer { server.stop() }
        let socket = try #require(server.unixSocket)
        let store = try RedisJobStore(url: "unix://\(socket)?db=2")
        #expect(store.name == "redis:\(socket)")
        let job = JobStoreConformance.job()
        try store.update(job.key) { $0 = job }
        #expect(try server.cli(["HLEN", "lk-jwt:jobs"], database: 2) == "1")
    }

    @Test func nameShowsTheHostOnly() throws {
        let server = try RedisServer(password: "hidden")
        defer { server.stop() }
        #expect(try RedisJobStore(url: "redis://:hidden@127.0.0.1:\(server.port)/1").name == "redis:127.0.0.1")
    }

    /// §8.9: field names are upstream's canonical JSON, with `/` unescaped.
    @Test func storesUnderUpstreamFieldNames() throws {
        try Self.withStoreOnAFreshServer { server, store in
            let hashed = JobKey(room: "hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY", identity: "vYVt8NUMTb0rAawkFqilcAtxKgY26U3Ab7R9INviNnU")
            let job = JobStoreConformance.job(hashed.room, hashed.identity)
            try store.update(job.key) { $0 = job }
            #expect(
                try server.cli(["HKEYS", "lk-jwt:jobs"])
                    == #"["hrQ0l3fv1RI0sCBUn3Nu59Bu/b3f7hWXbMLLfFMLNOY","vYVt8NUMTb0rAawkFqilcAtxKgY26U3Ab7R9INviNnU"]"#)
            let legacy = JobStoreConformance.job("krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs", "@alice:example.com:DEVICE")
            try store.update(legacy.key) { $0 = legacy }
            #expect(
                try server.cli(["HEXISTS", "lk-jwt:jobs", #"["krj2dgxw2K6EOm9he4GfQJ6JsSVWfJ8a7BkyjZcSmxs","@alice:example.com:DEVICE"]"#]) == "1")
        }
    }

    @Test func keepsTheIndexesBesideTheRecord() throws {
        try Self.withStoreOnAFreshServer { server, store in
            let job = JobStoreConformance.job("room", "hashed", alternatives: ["@alice:example.org:DEVICE"], due: 4_000)
            try store.update(job.key) { $0 = job }
            let name = job.key.storageName
            var stored = job
            stored.version = 1
            #expect(try server.cli(["HGET", "lk-jwt:jobs", name]) == stored.record())
            #expect(try server.cli(["ZSCORE", "lk-jwt:due", name]) == "4000")
            #expect(try server.cli(["HGET", "lk-jwt:identities", #"["room","@alice:example.org:DEVICE"]"#]) == name)
            #expect(try server.cli(["HGET", "lk-jwt:identities", name]) == name)

            try store.update(job.key) { job in
                job?.waitingTimerDue = nil
                job?.lookup = nil
            }
            #expect(try server.cli(["ZCARD", "lk-jwt:due"]) == "0")
            try store.delete(job.key)
            #expect(try server.cli(["EXISTS", "lk-jwt:jobs", "lk-jwt:due", "lk-jwt:identities"]) == "0")
        }
    }

    @Test func readsRecordsWrittenByUpstream() throws {
        try Self.withStoreOnAFreshServer { server, store in
            let key = JobKey(room: "room", identity: "upstream")
            _ = try server.cli(["HSET", "lk-jwt:jobs", key.storageName, Self.upstreamRecord])

            let records = try store.allRecords()
            #expect(records.count == 1)
            let job = try #require(try records.first?.job.get())
            #expect(job.isForeign)
            #expect(job.key == key)
            #expect(job.delayTimeout == 8000)
            #expect(job.restartedAt == 1_748_772_000_123)
            #expect(try store.update(key) { $0?.isForeign } == true)
            #expect(try store.key(room: "room", identity: "upstream") == key)
        }
    }

    @Test func unparsableRecordsAreSkippedNotOverwritten() throws {
        try Self.withStoreOnAFreshServer { server, store in
            let key = JobKey(room: "r", identity: "i")
            _ = try server.cli(["HSET", "lk-jwt:jobs", key.storageName, "{not json"])
            _ = try server.cli(["ZADD", "lk-jwt:due", "5", key.storageName])
            #expect(try store.dueKeys(now: .max, limit: 10) == [key])
            try JobStoreConformance(store: store, secondConnection: RedisJobStore(url: server.url)).unparsableRecordIsSkippedNotOverwritten(key)
            _ = try server.cli(["HSET", "lk-jwt:jobs", key.storageName, "{not json"])
            try store.delete(key)
            #expect(try server.cli(["HLEN", "lk-jwt:jobs"]) == "0")
        }
    }

    /// Quota sets: upstream deletes records without touching them; such members stop counting.
    @Test func quotaCountsIgnoreJobsUpstreamDeleted() throws {
        try Self.withStoreOnAFreshServer { server, store in
            let quota = JobQuota(perUser: 2, perServer: nil)
            let first = JobStoreConformance.owned("@u:example.org", 0)
            #expect(try store.create(first, quota: quota) == .created)
            #expect(try store.create(JobStoreConformance.owned("@u:example.org", 1), quota: quota) == .created)
            #expect(try server.cli(["SCARD", "lk-jwt:user-jobs:@u:example.org"]) == "2")
            #expect(try server.cli(["SCARD", "lk-jwt:server-jobs:example.org"]) == "2")
            _ = try server.cli(["HDEL", "lk-jwt:jobs", first.key.storageName])
            #expect(try store.create(JobStoreConformance.owned("@u:example.org", 2), quota: quota) == .created)
            #expect(try store.create(JobStoreConformance.owned("@u:example.org", 3), quota: quota) == .refused(.user))
            // Deleting through the store leaves no empty sets behind (the server set still names the job
            // upstream deleted: it was never counted up to its cap, where pruning happens).
            for index in 0..<4 { try store.delete(JobStoreConformance.owned("@u:example.org", index).key) }
            #expect(try server.cli(["EXISTS", "lk-jwt:user-jobs:@u:example.org"]) == "0")
            #expect(try server.cli(["SMEMBERS", "lk-jwt:server-jobs:example.org"]) == first.key.storageName)
        }
    }

    /// Upstream rewrites and deletes records without touching our indexes.
    @Test func ignoresIndexEntriesUpstreamLeftStale() throws {
        try Self.withStoreOnAFreshServer { server, store in
            let job = JobStoreConformance.job("room", "upstream", alternatives: ["@alice:example.org:DEVICE"], due: 1_000)
            try store.update(job.key) { $0 = job }
            _ = try server.cli(["HSET", "lk-jwt:jobs", job.key.storageName, Self.upstreamRecord])
            #expect(try store.key(room: "room", identity: "@alice:example.org:DEVICE") == nil)
            #expect(try store.key(room: "room", identity: "upstream") == job.key)

            _ = try server.cli(["HDEL", "lk-jwt:jobs", job.key.storageName])
            let other = JobStoreConformance.job("room", "other", due: 2_000)
            try store.update(other.key) { $0 = other }
            #expect(try store.dueKeys(now: 5_000, limit: 1) == [other.key])
            #expect(try server.cli(["ZCARD", "lk-jwt:due"]) == "1")
        }
    }

    @Test func reconnectsWhenTheServerDropsConnections() throws {
        try Self.withStoreOnAFreshServer { server, store in
            let job = JobStoreConformance.job()
            try store.update(job.key) { $0 = job }
            #expect(try server.cli(["CLIENT", "KILL", "TYPE", "normal"]) != "0")
            #expect(try store.update(job.key) { $0?.jobID } == job.jobID)
            try store.writeHeartbeat(42)
            #expect(try store.newestHeartbeat() == 42)
        }
    }

    /// hiredis's kind of failure and Redis's error replies stay apart from the text.
    @Test func errorsKeepTheirKind() throws {
        let refusing = try RedisURL(parsing: "redis://127.0.0.1:1")
        do {
            _ = try RedisJobStore(url: refusing)
            Issue.record("connected to port 1")
        } catch {
            #expect(error.cause == .library("hiredis", code: 1), "REDIS_ERR_IO")
        }
        let server = try RedisServer(password: "right")
        defer { server.stop() }
        let wrongPassword = try RedisURL(parsing: "redis://:wrong@127.0.0.1:\(server.port)")
        do {
            _ = try RedisJobStore(url: wrongPassword)
            Issue.record("authenticated with a wrong password")
        } catch {
            #expect(error.cause == .errorReply)
        }
    }

    @Test func recoveryLockExpiresWhenItsHolderDied() throws {
        try Self.withStoreOnAFreshServer { server, store in
            // Taken before the SET: the lock lapses 300 ms after it, however long redis-cli takes to return.
            let start = ContinuousClock.now
            _ = try server.cli(["SET", "lk-jwt:recovery-lock", "dead-holder", "PX", "300"])
            let holder = try store.withRecoveryLock { () throws(JobStoreError) in
                try? server.cli(["GET", "lk-jwt:recovery-lock"])
            }
            #expect(holder != nil && holder != "dead-holder")
            #expect(ContinuousClock.now - start >= .milliseconds(250))
            #expect(try server.cli(["EXISTS", "lk-jwt:recovery-lock"]) == "0")
        }
    }
}

extension RedisJobStore {
    /// The store at a URL in the text form the tests write.
    convenience init(url text: String) throws {
        try self.init(url: RedisURL(parsing: text))
    }
}
