import ArgumentParser
import Glibc
import LKJWTLogic
import LKJWTSystem
import Logging

/// Wires the logic to the transport the process was started with (contract §1.3, §1.4).
struct Launcher {
    let configuration: Configuration
    let environment: [String: String]
    let threads: Int
    let logger: Logger

    /// `jobsOnly`: the `--jobs` runner for CGI deployments, serving no requests.
    func launch(jobsOnly: Bool) throws {
        let http = CurlHTTPClient(tls: configuration.tls, logger: logger)
        let addressRules = configuration.outboundAddressRules
        let clock = SystemWallClock()
        let random = SystemRandomSource()
        let store: any JobStore
        do {
            store = try configuration.jobStore.open()
        } catch {
            ProcessEnvironment.printError(error.message)
            throw ExitCode(1)
        }
        let jobs = DelayedLeaveJobs(
            dependencies: .init(
                store: store,
                clientServerAPI: ClientServerAPIResolver(
                    overrides: configuration.csAPIURLOverrides, http: http, clock: clock, addressRules: addressRules),
                roomService: RoomServiceClient(
                    liveKitURL: configuration.liveKitURL, apiKey: configuration.apiKey, apiSecret: configuration.apiSecret, http: http, clock: clock),
                delayedEvents: DelayedEventClient(http: http, clock: clock, addressRules: addressRules),
                clock: clock, random: random),
            settings: JobMachine.Settings(sanityInterval: .seconds(configuration.sanityCheckIntervalSeconds)),
            logger: logger)
        let service = AuthorizationService(
            configuration: configuration, dependencies: .init(
                http: http, clock: clock, srv: SystemSRVResolver(), random: random, delegation: jobs, addressRules: addressRules,
                admission: DestinationAdmission(limits: .init(threads: threads), clock: SystemMonotonicClock())),
            logger: logger)
        let scheduler = JobScheduler(jobs: jobs, logger: logger)

        // The stop signals have been blocked since start-up (LKJWTCommand.run); no thread may run yet
        // with them unblocked.
        assert(ProcessSignals.stopSignalsBlocked)
        if jobsOnly {
            logStart(listen: "jobs", store: store)
            startScheduler(scheduler)
            let received = ProcessSignals.waitForStop()
            logger.info("Shutting down", metadata: ["signal": "\(received)"])
            scheduler.stop()
            return
        }

        switch ServingMode.detect(environment: environment) {
        case .cgi:
            ProcessSignals.unblockStopSignals()
            // No long-lived process here: somebody else must run the timers (§8.10 rule 8).
            let heartbeat = try? store.newestHeartbeat()
            if heartbeat.map({ jobs.nowMilliseconds.saturatingSubtracting($0) > JobScheduler.heartbeatTimeout.milliseconds }) ?? true {
                logger.warning("No job scheduler is alive; run `lkjwt-fcgi --jobs` beside the CGI deployment so delayed leave events are handled")
            }
            CGIResponder.respond(environment: environment, service: service)
        case .inheritedSocket(let fileDescriptor, let origin):
            logStart(listen: origin, store: store)
            startScheduler(scheduler)
            FastCGIServer(listenFD: fileDescriptor, threadCount: threads, service: service, logger: logger, onShutdown: jobs.beginShutdown).serve()
            scheduler.stop()
        case .ownSocket:
            let listenFD: Int32
            do {
                listenFD = try ListenSocket.open(configuration.listenAddress, group: configuration.socketGroup)
            } catch {
                ProcessEnvironment.printError(ConfigurationError.cannotListen(address: configuration.listenAddress.description, detail: error.description).message)
                throw ExitCode(1)
            }
            logStart(listen: configuration.listenAddress.description, store: store)
            if let exposure = configuration.listenAddress.exposureNotice {
                logger.log(level: exposure.level, "\(exposure.message)", metadata: exposure.loggerMetadata)
            }
            if configuration.socketGroup != nil, case .tcp = configuration.listenAddress {
                logger.warning("LIVEKIT_JWT_SOCKET_GROUP applies to a unix socket only; ignored for a TCP listen address")
            }
            startScheduler(scheduler)
            FastCGIServer(listenFD: listenFD, threadCount: threads, service: service, logger: logger, onShutdown: jobs.beginShutdown).serve()
            scheduler.stop()
            if case .unix(let path) = configuration.listenAddress { unlink(path) }
        }
    }

    /// Recovery before the first claim, so a cold start never races its own scheduler (§1.4 step 5).
    private func startScheduler(_ scheduler: JobScheduler) {
        do {
            try scheduler.recoverIfColdStart()
        } catch {
            logger.error("Job recovery failed; stored jobs continue as they are", metadata: ["err": "\(error)"])
        }
        scheduler.start()
    }

    private func logStart(listen: String, store: any JobStore) {
        logger.info("Starting service", metadata: [
            "LIVEKIT_URL": "\(configuration.liveKitURL)",
            "LIVEKIT_JWT_BIND": "\(listen)",
            "LIVEKIT_FULL_ACCESS_HOMESERVERS": "\(configuration.accessPolicy)",
            "SkipVerifyTLS": "\(configuration.tls.skipVerification)",
            "SanityCheckInterval": "\(configuration.sanityCheckIntervalSeconds == 0 ? "disabled" : "\(configuration.sanityCheckIntervalSeconds)s")",
            "JobStore": "\(store.name)",
            "IPRangeBlocklist": "\(configuration.addressPolicy.blocklistSummary)",
            "IPRangeAllowlist": "\(configuration.addressPolicy.allowlistSummary)",
            "threads": "\(threads)",
        ])
        logger.info("Job store opened", metadata: ["JobStore": "\(store.name)"])
        if case .memory = configuration.jobStore {
            logger.warning("LIVEKIT_JOBS_DB=:memory: keeps delayed leave jobs in this process only: they are neither durable nor shared between workers")
        }
    }
}
