import Logging
import Synchronization
import Testing

/// Keeps every log record (level, message, metadata) for tests that look at what was logged, after
/// swift-log's own test handler. Records from debug up by default: the most a deployment can turn on
/// (`LIVEKIT_LOG_LEVEL=debug`), so "never logged" is checked where the most is logged.
struct RecordingLogHandler: LogHandler {
    struct Entry: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: Logger.Metadata

        /// Every text of the record, nested metadata included, as one searchable string.
        var text: String {
            ([level.rawValue, message] + metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
        }
    }

    private final class Storage: Sendable {
        let entries = Mutex<[Entry]>([])
    }

    /// Shared by every copy: a `Logger` copies its handler.
    private let storage = Storage()
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level

    init(level: Logger.Level = .debug) {
        logLevel = level
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let entry = Entry(level: event.level, message: "\(event.message)", metadata: metadata.merging(event.metadata ?? [:]) { $1 })
        storage.entries.withLock { $0.append(entry) }
    }

    /// A logger writing to this handler.
    var logger: Logger {
        Logger(label: "test", factory: { _ in self })
    }

    var entries: [Entry] { storage.entries.withLock { $0 } }

    var messages: [String] { entries.map(\.message) }

    /// The records with this message.
    func entries(_ message: String) -> [Entry] {
        entries.filter { $0.message == message }
    }

    /// The one record with this message, failing the test unless there is exactly one.
    func entry(_ message: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Entry {
        let matching = entries(message)
        try #require(matching.count == 1, "expected one record \"\(message)\", got \(messages)", sourceLocation: sourceLocation)
        return matching[0]
    }

    /// Fails the test for every record that contains one of `secrets` anywhere (message, key or value).
    func expectNone(of secrets: [String], sourceLocation: SourceLocation = #_sourceLocation) {
        for secret in secrets where !secret.isEmpty {
            for entry in entries where entry.text.contains(secret) {
                Issue.record("a secret reached the log: \(entry.text)", sourceLocation: sourceLocation)
            }
        }
    }
}
