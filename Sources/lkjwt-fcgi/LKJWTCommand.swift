import ArgumentParser
import Glibc
import LKJWTLogic
import LKJWTSystem
import Logging

struct LKJWTCommand: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "lkjwt-fcgi",
        abstract: "MatrixRTC authorization service (LiveKit JWTs for Matrix OpenID tokens) as a FastCGI or CGI responder.",
        discussion: """
            Configured by the environment variables of element-hq's lk-jwt-service (LIVEKIT_URL, LIVEKIT_KEY, \
            LIVEKIT_SECRET, LIVEKIT_FULL_ACCESS_HOMESERVERS, …; see the README). Serves the FastCGI socket \
            handed over by systemd (fd 3) or spawn-fcgi (fd 0); answers one request when started as plain CGI; \
            otherwise listens on LIVEKIT_JWT_BIND or 127.0.0.1:LIVEKIT_JWT_PORT (default 127.0.0.1:8080).
            """,
        version: version,
        subcommands: [RegistrationCommand.self])

    @Option(help: "Worker threads serving requests concurrently in this process.")
    var threads: Int = 16

    @Flag(help: "Validate the environment, print the effective configuration with secrets masked, and exit.")
    var checkConfig = false

    @Flag(help: "Serve no requests; only run the delayed-leave job scheduler (for plain CGI deployments).")
    var jobs = false

    func validate() throws {
        guard (1...1024).contains(threads) else {
            throw ValidationError("--threads must be between 1 and 1024")
        }
    }

    func run() throws {
        // First of all: every thread started from here on (scheduler, workers, libcurl's) inherits it.
        ProcessSignals.blockStopSignals()
        let environment = ProcessEnvironment.current()
        let (level, levelNotice) = Configuration.logLevel(from: environment)
        LoggingSystem.bootstrap { _ in LogfmtLogHandler(level: level) }
        let logger = Logger(label: "lkjwt-fcgi")
        if let levelNotice { logger.log(level: levelNotice.level, "\(levelNotice.message)", metadata: levelNotice.loggerMetadata) }

        let parsed: (configuration: Configuration, notices: [ConfigurationNotice])
        do {
            parsed = try Configuration.parse(
                environment: environment, readFile: ProcessEnvironment.readFile, readRegistration: YAMLRegistrationReader.tokens(fromYAML:))
        } catch {
            ProcessEnvironment.printError(error.message)
            throw ExitCode(1)
        }
        if checkConfig {
            print(parsed.configuration.description)
            return
        }
        for notice in parsed.notices {
            logger.log(level: notice.level, "\(notice.message)", metadata: notice.loggerMetadata)
        }
        try Launcher(configuration: parsed.configuration, environment: environment, threads: threads, logger: logger).launch(jobsOnly: jobs)
    }
}

extension ConfigurationNotice {
    var loggerMetadata: Logger.Metadata {
        metadata.mapValues { .string($0) }
    }
}
