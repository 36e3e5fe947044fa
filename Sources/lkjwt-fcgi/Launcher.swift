import ArgumentParser
import Glibc
import LKJWTLogic
import Logging

/// Wires the logic to the transport the process was started with (contract §1.3, §1.4).
struct Launcher {
    let configuration: Configuration
    let environment: [String: String]
    let threads: Int
    let logger: Logger

    func launch() throws {
        let mode = ServingMode.detect(environment: environment)
        let service = AuthorizationService(
            configuration: configuration,
            dependencies: .init(http: CurlHTTPClient(tls: configuration.tls)),
            logger: logger)

        switch mode {
        case .cgi:
            CGIResponder.respond(environment: environment, service: service)
        case .inheritedSocket(let fileDescriptor, let origin):
            logStart(listen: origin)
            FastCGIServer(listenFD: fileDescriptor, threadCount: threads, service: service, logger: logger).serve()
        case .ownSocket:
            let listenFD: Int32
            do {
                listenFD = try ListenSocket.open(configuration.listenAddress)
            } catch {
                ProcessEnvironment.printError("Could not listen on \(configuration.listenAddress.description.goQuoted): \(error)")
                throw ExitCode(1)
            }
            logStart(listen: configuration.listenAddress.description)
            FastCGIServer(listenFD: listenFD, threadCount: threads, service: service, logger: logger).serve()
            if case .unix(let path) = configuration.listenAddress { unlink(path) }
        }
    }

    private func logStart(listen: String) {
        let fullAccess: String
        switch configuration.accessPolicy {
        case .everyone: fullAccess = "[*]"
        case .servers(let names): fullAccess = "[" + names.joined(separator: " ") + "]"
        }
        logger.info("Starting service", metadata: [
            "LIVEKIT_URL": "\(configuration.liveKitURL)",
            "LIVEKIT_JWT_BIND": "\(listen)",
            "LIVEKIT_FULL_ACCESS_HOMESERVERS": "\(fullAccess)",
            "SkipVerifyTLS": "\(configuration.tls.skipVerification)",
            "SanityCheckInterval": "\(configuration.sanityCheckIntervalSeconds == 0 ? "disabled" : "\(configuration.sanityCheckIntervalSeconds)s")",
            "threads": "\(threads)",
        ])
    }
}
