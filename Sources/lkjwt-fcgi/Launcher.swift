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

    /// What the process was started as: the `--jobs` runner of CGI deployments (serving no
    /// requests), or a responder in the serving mode its start showed (§1.3).
    enum Role: Equatable {
        case jobRunner
        case responder(ServingMode)
    }

    func launch(_ role: Role) throws {
        // The stop signals have been blocked since start-up (LKJWTCommand.run); no thread may run yet
        // with them unblocked.
        assert(ProcessSignals.stopSignalsBlocked)
        if role == .responder(.cgi) {
            respondToCGIRequest()
            return
        }
        // Long-running: libcurl is loaded now, before any thread, and a missing one stops the start.
        do {
            try CurlLibrary.load()
        } catch {
            ProcessEnvironment.printError(error.description)
            throw ExitCode(1)
        }
        let store: any JobStore
        do {
            store = try configuration.jobStore.open()
        } catch {
            ProcessEnvironment.printError(error.message)
            throw ExitCode(1)
        }
        let (service, jobs) = compose(store: store)
        let scheduler = JobScheduler(jobs: jobs, logger: logger)
        switch role {
        case .jobRunner:
            logStart(listen: "jobs", store: store)
            startScheduler(scheduler)
            let received = ProcessSignals.waitForStop()
            logger.info("Shutting down", metadata: ["signal": "\(received)"])
            scheduler.stop()
        case .responder(.inheritedSocket(let fileDescriptor, let origin)):
            logStart(listen: origin, store: store)
            serve(listenFD: fileDescriptor, service: service, jobs: jobs, scheduler: scheduler)
        case .responder(.ownSocket):
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
            serve(listenFD: listenFD, service: service, jobs: jobs, scheduler: scheduler)
            if case .unix(let path) = configuration.listenAddress { unlink(path) }
        case .responder(.cgi):
            preconditionFailure("answered above")
        }
    }

    /// The one composition root: the service and the jobs share one HTTP client, clock, random
    /// source and LiveKit RoomService client.
    private func compose(store: any JobStore) -> (AuthorizationService, DelayedLeaveJobs) {
        let http = CurlHTTPClient(tls: configuration.tls, logger: logger)
        let addressRules = configuration.outboundAddressRules
        let clock = SystemWallClock()
        let random = SystemRandomSource()
        let roomService = RoomServiceClient(
            liveKitURL: configuration.liveKitURL, apiKey: configuration.apiKey, apiSecret: configuration.apiSecret, http: http, clock: clock)
        let jobs = DelayedLeaveJobs(
            dependencies: .init(
                store: store,
                clientServerAPI: ClientServerAPIResolver(
                    overrides: configuration.csAPIURLOverrides, http: http, clock: clock, addressRules: addressRules),
                roomService: roomService,
                delayedEvents: DelayedEventClient(http: http, clock: clock, addressRules: addressRules),
                clock: clock, random: random),
            settings: JobMachine.Settings(sanityInterval: Duration.seconds(configuration.sanityCheckIntervalSeconds).milliseconds),
            logger: logger)
        let service = AuthorizationService(
            configuration: configuration, dependencies: .init(
                http: http, clock: clock, random: random, delegation: jobs, addressRules: addressRules,
                admission: DestinationAdmission(limits: .init(threads: threads)), roomService: roomService),
            logger: logger)
        return (service, jobs)
    }

    /// Plain CGI: one request, then exit. libcurl, OpenSSL and the job store are set up only if this
    /// request needs them; a `/healthz` needs none.
    private func respondToCGIRequest() {
        ProcessSignals.unblockStopSignals()
        let (service, _) = compose(store: OnFirstUseJobStore(configuration.jobStore) { [logger] store in
            // No long-lived process here: somebody else must run the timers (§8.10 rule 8).
            let heartbeat: Int64?
            do {
                heartbeat = try store.newestHeartbeat()
            } catch {
                logger.error("Could not read the job scheduler heartbeat", metadata: ["err": "\(error)"])
                heartbeat = nil
            }
            if !JobScheduler.isAlive(heartbeat: heartbeat, now: SystemWallClock().now().unixMilliseconds) {
                logger.warning("No job scheduler is alive; run `lkjwt-fcgi --jobs` beside the CGI deployment so delayed leave events are handled")
            }
        })
        CGIResponder.respond(environment: environment, service: service)
        // The process ends with its one request: tearing the object graph down would only cost time.
        exit(0)
    }

    private func serve(listenFD: Int32, service: AuthorizationService, jobs: DelayedLeaveJobs, scheduler: JobScheduler) {
        startScheduler(scheduler)
        FastCGIServer(listenFD: listenFD, threadCount: threads, service: service, logger: logger, onShutdown: jobs.beginShutdown).serve()
        scheduler.stop()
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
