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

    /// What the process was started as: the `--jobs` runner of CGI deployments (serving no
    /// requests), or a responder in the serving mode its start showed (§1.3).
    enum Role: Equatable {
        case jobRunner
        case responder(ServingMode)
    }

    func launch(_ role: Role) throws {
        // The stop signals have been blocked since start-up (LKJWTCommand.start); no thread may run yet
        // with them unblocked.
        assert(ProcessSignals.stopSignalsBlocked)
        switch role {
        case .responder(.cgi):
            respondToCGIRequest()
        case .jobRunner:
            let process = try LongRunning(self)
            logStart(listen: "jobs", store: process.store)
            startScheduler(process.scheduler)
            process.membership?.start()
            let received = ProcessSignals.waitForStop()
            logger.info("Shutting down", metadata: ["signal": "\(received)"])
            process.membership?.stop()
            process.scheduler.stop()
        case .responder(.inheritedSocket(let fileDescriptor, let origin)):
            let process = try LongRunning(self)
            logStart(listen: origin, store: process.store)
            serve(listenFD: fileDescriptor, process)
        case .responder(.ownSocket):
            let process = try LongRunning(self)
            let listenFD: Int32
            do {
                listenFD = try ListenSocket.open(configuration.listenAddress, group: configuration.socketGroup)
            } catch {
                ProcessEnvironment.printError(ConfigurationError.cannotListen(address: configuration.listenAddress.description, detail: error.description).message)
                throw ExitCode(1)
            }
            logStart(listen: configuration.listenAddress.description, store: process.store)
            if let exposure = configuration.listenAddress.exposureNotice {
                logger.log(level: exposure.level, "\(exposure.message)", metadata: exposure.loggerMetadata)
            }
            if configuration.socketGroup != nil, case .tcp = configuration.listenAddress {
                logger.warning("LIVEKIT_JWT_SOCKET_GROUP applies to a unix socket only; ignored for a TCP listen address")
            }
            serve(listenFD: listenFD, process)
            if case .unix(let path) = configuration.listenAddress { unlink(path) }
        }
    }

    /// What a long-running process (FastCGI responder or job runner) sets up before its threads:
    /// libcrypto and libcurl loaded (a missing one stops the start), the job store opened, the service
    /// composed.
    private struct LongRunning {
        let store: any JobStore
        let service: AuthorizationService
        let jobs: DelayedLeaveJobs
        let scheduler: JobScheduler
        let membership: MembershipMonitor?

        init(_ launcher: Launcher) throws {
            do {
                try CryptoLibrary.load()
                try CurlLibrary.load()
            } catch {
                ProcessEnvironment.printError(error.description)
                throw ExitCode(1)
            }
            do {
                store = try launcher.configuration.jobStore.open()
            } catch {
                ProcessEnvironment.printError(error.message)
                throw ExitCode(1)
            }
            (service, jobs, membership) = launcher.compose(store: store)
            scheduler = JobScheduler(jobs: jobs, logger: launcher.logger)
        }
    }

    /// The one composition root: the service, the jobs and the membership monitor share one HTTP
    /// client, clock, random source, LiveKit RoomService client and application-service client.
    private func compose(store: any JobStore) -> (AuthorizationService, DelayedLeaveJobs, MembershipMonitor?) {
        let http = CurlHTTPClient(tls: configuration.tls, logger: logger)
        let addressRules = configuration.outboundAddressRules
        let clock = SystemWallClock()
        let random = SystemRandomSource()
        let roomService = RoomServiceClient(
            liveKitURL: configuration.liveKitURL, apiKey: configuration.apiKey, apiSecret: configuration.apiSecret, http: http, clock: clock)
        let clientServerAPI = ClientServerAPIResolver(
            overrides: configuration.csAPIURLOverrides, http: http, clock: clock, addressRules: addressRules)
        let applicationService = configuration.applicationService.map {
            ApplicationServiceClient(settings: $0, http: http, clock: clock, clientServerAPI: clientServerAPI)
        }
        let jobs = DelayedLeaveJobs(
            dependencies: .init(
                store: store,
                clientServerAPI: clientServerAPI,
                roomService: roomService,
                delayedEvents: DelayedEventClient(http: http, clock: clock, addressRules: addressRules),
                applicationService: applicationService, clock: clock, random: random),
            settings: JobMachine.Settings(sanityInterval: .seconds(configuration.sanityCheckIntervalSeconds)),
            logger: logger)
        let membership = membershipMonitor(store: store, roomService: roomService, clock: clock, homeserver: applicationService, owner: jobs.owner)
        let service = AuthorizationService(
            configuration: configuration, dependencies: .init(
                http: http, clock: clock, srv: SystemSRVResolver(), random: random, delegation: jobs, addressRules: addressRules,
                admission: DestinationAdmission(limits: .init(threads: threads), clock: SystemMonotonicClock()),
                applicationService: applicationService, membership: membership, roomService: roomService),
            logger: logger)
        return (service, jobs, membership)
    }

    /// Plain CGI: one request, then exit. libcurl, OpenSSL and the job store are set up only if this
    /// request needs them; a `/healthz` needs none.
    private func respondToCGIRequest() {
        ProcessSignals.unblockStopSignals()
        let (service, _, _) = compose(store: OnFirstUseJobStore(configuration.jobStore) { [logger] store in
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

    private func serve(listenFD: Int32, _ process: LongRunning) {
        startScheduler(process.scheduler)
        process.membership?.start()
        FastCGIServer(listenFD: listenFD, threadCount: threads, service: process.service, logger: logger, onShutdown: process.jobs.beginShutdown)
            .serve()
        process.membership?.stop()
        process.scheduler.stop()
    }

    /// AS-MODE.md B4: only in application-service mode and with an interval. Its thread runs only in
    /// long-lived processes; a CGI invocation still tracks tokens and applies webhooks.
    private func membershipMonitor(
        store: any JobStore, roomService: RoomServiceClient, clock: any WallClock, homeserver: ApplicationServiceClient?, owner: String
    ) -> MembershipMonitor? {
        guard let homeserver, configuration.membershipCheckIntervalSeconds > 0 else { return nil }
        return MembershipMonitor(
            dependencies: .init(store: store, roomService: roomService, homeserver: homeserver, clock: clock),
            intervalSeconds: configuration.membershipCheckIntervalSeconds, owner: owner, logger: logger)
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
            "MembershipCheckInterval": "\(configuration.applicationService == nil || configuration.membershipCheckIntervalSeconds == 0 ? "disabled" : "\(configuration.membershipCheckIntervalSeconds)s")",
            "IPRangeBlocklist": "\(configuration.addressPolicy.blocklistSummary)",
            "IPRangeAllowlist": "\(configuration.addressPolicy.allowlistSummary)",
            "AppService": "\(configuration.applicationService?.serverName ?? "off")",
            "CanUpdateOwnMetadata": "\(configuration.canUpdateOwnMetadata)",
            "threads": "\(threads)",
        ])
        logger.info("Job store opened", metadata: ["JobStore": "\(store.name)"])
        if case .memory = configuration.jobStore {
            logger.warning("LIVEKIT_JOBS_DB=:memory: keeps delayed leave jobs in this process only: they are neither durable nor shared between workers")
        }
    }
}
