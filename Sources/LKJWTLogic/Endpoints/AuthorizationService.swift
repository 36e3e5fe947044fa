import Logging

/// The whole HTTP surface as a function from `Request` to `Response`; the FastCGI and CGI adapters
/// only translate. Shared by all worker threads, hence immutable.
public final class AuthorizationService: Sendable {
    public struct Dependencies: Sendable {
        public var http: any HTTPClient
        public var clock: any WallClock
        public var resolver: ServerResolver
        public var delegation: (any DelayedLeaveDelegation)?
        /// nil: no budget for servers not known to answer (tests, CGI: one request per process).
        public var admission: DestinationAdmission?
        /// The homeserver calls of the application-service endpoints; nil: those endpoints are 404.
        public var applicationService: ApplicationServiceClient?
        /// The membership monitor (AS-MODE.md B4); nil when it is off.
        public var membership: MembershipMonitor?
        /// The composition root passes the client it shares with the jobs; nil: one over `http`.
        public var roomService: RoomServiceClient?

        public init(
            http: any HTTPClient, clock: any WallClock, srv: any SRVResolver,
            random: any RandomSource, delegation: (any DelayedLeaveDelegation)? = nil,
            addressRules: OutboundAddressRules, admission: DestinationAdmission? = nil, applicationService: ApplicationServiceClient? = nil,
            membership: MembershipMonitor? = nil, roomService: RoomServiceClient? = nil
        ) {
            self.http = http
            self.clock = clock
            self.resolver = ServerResolver(http: http, srv: srv, clock: clock, random: random, addressRules: addressRules)
            self.delegation = delegation
            self.admission = admission
            self.applicationService = applicationService
            self.membership = membership
            self.roomService = roomService
        }
    }

    let configuration: Configuration
    /// `configuration.apiSecret`, prepared for signing join tokens.
    let signingKey: HMACKey
    let clock: any WallClock
    let verifier: OpenIDVerifier
    let roomService: RoomServiceClient
    let delegation: (any DelayedLeaveDelegation)?
    let membership: MembershipMonitor?
    let webhookVerifier: WebhookVerifier
    let applicationService: ApplicationServiceClient?
    let logger: Logger

    public init(configuration: Configuration, dependencies: Dependencies, logger: Logger) {
        self.configuration = configuration
        self.signingKey = HMACKey(configuration.apiSecret)
        self.clock = dependencies.clock
        self.verifier = OpenIDVerifier(resolver: dependencies.resolver, http: dependencies.http, admission: dependencies.admission)
        self.roomService = dependencies.roomService ?? RoomServiceClient(
            liveKitURL: configuration.liveKitURL, apiKey: configuration.apiKey, apiSecret: configuration.apiSecret,
            http: dependencies.http, clock: dependencies.clock)
        self.delegation = dependencies.delegation
        self.membership = dependencies.membership
        self.webhookVerifier = WebhookVerifier(apiKey: configuration.apiKey, apiSecret: configuration.apiSecret, clock: dependencies.clock)
        // Both or neither: the endpoints need the settings (hs_token) and the client (as_token).
        self.applicationService = configuration.applicationService == nil ? nil : dependencies.applicationService
        self.logger = logger
    }

    public func respond(to request: Request) -> Response {
        var response = answer(request)
        // The one place that decides it (RFC 9110 §9.3.2): a HEAD answer is the GET answer's head.
        if request.method == .head { response.body = [] }
        return response
    }

    private func answer(_ request: Request) -> Response {
        // Matrix paths are the application-service endpoints, or nothing (contract §3.1 rev. 2).
        if Route.isMatrixPath(request.path) {
            if let applicationService, let route = ApplicationServiceRoute.match(path: request.path) {
                return respondAsApplicationService(route, request, client: applicationService)
            }
            return AuthorizationService.errorResponse(MatrixError.unrecognized, headers: [("Content-Type", "application/json")])
        }
        guard let route = Route.match(path: request.path) else {
            return AuthorizationService.errorResponse(MatrixError.unrecognized, headers: [("Content-Type", "application/json")])
        }
        if request.body == .timedOut {
            logger.warning("Request body timed out", metadata: ["RemoteAddr": "\(request.remoteAddress)", "timeout": "\(Request.bodyTimeout)"])
            switch route {
            case .getToken, .legacyToken, .delegateDelayedLeave:
                return AuthorizationService.errorResponse(MatrixError.bodyTimedOut, headers: CORS.headers)
            case .healthz, .sfuWebhook:
                return Response(status: 408)
            }
        }
        switch route {
        case .healthz:
            return healthz(request)
        case .sfuWebhook:
            receiveWebhook(request)
            // Always 200 (§3.7): LiveKit retries on errors, and nothing it sent can be fixed by a retry.
            return Response(status: 200)
        case .getToken, .legacyToken, .delegateDelayedLeave:
            return jsonEndpoint(route, request)
        }
    }

    private func healthz(_ request: Request) -> Response {
        guard request.method == .get || request.method == .head else {
            return Response(status: 405, headers: [("Allow", "GET, HEAD")])
        }
        // Debug (§3.8 rev. 2): a load balancer probing every second must not fill the log.
        logger.debug("Health check", metadata: ["RemoteAddr": "\(request.remoteAddress)"])
        return Response(status: 200)
    }

    /// Signed participant events move the job watching that participant (contract §7).
    private func receiveWebhook(_ request: Request) {
        let body: [UInt8]
        switch webhookVerifier.verify(authorization: request.headers["authorization"], body: request.body) {
        case .failure(let rejection):
            logger.warning("Failed to validate webhook", metadata: ["err": .untrusted(rejection.reason), "RemoteAddr": "\(request.remoteAddress)"])
            return
        case .success(let verified):
            body = verified
        }
        guard let event = WebhookEvent.parse(body) else {
            logger.warning("Failed to parse webhook", metadata: ["err": "not a LiveKit webhook event", "RemoteAddr": "\(request.remoteAddress)"])
            return
        }
        // Before the jobs: a tracked participant's `participant_joined` starts its membership check.
        membership?.apply(event)
        guard let jobEvent = event.jobEvent else {
            logger.debug("Webhook event ignored", metadata: ["event": .untrusted(event.event), "room": .untrusted(event.room)])
            return
        }
        logger.info("Received webhook", metadata: ["event": .untrusted(event.event), "room": .untrusted(event.room), "lkId": .untrusted(event.participantIdentity)])
        delegation?.apply(jobEvent, room: event.room, identity: event.participantIdentity)
    }

    private func jsonEndpoint(_ route: Route, _ request: Request) -> Response {
        switch request.method {
        case .options:
            return Response(status: 200, headers: CORS.headers)
        case .post:
            break
        default:
            return AuthorizationService.errorResponse(MatrixError.methodNotAllowed, headers: CORS.headers + [("Allow", "POST, OPTIONS")])
        }
        guard case .bytes(let body) = request.body else {
            logger.error("Error reading request", metadata: ["RemoteAddr": "\(request.remoteAddress)", "err": "body larger than \(Request.maximumBodySize) bytes"])
            return AuthorizationService.errorResponse(MatrixError.tooLarge, headers: CORS.headers)
        }
        let outcome: Result<JSONValue, MatrixError>
        do {
            let json = try JSONParser.parse(body)
            switch route {
            case .getToken: outcome = exchangeToken(try TokenRequest(json: json), request)
            case .legacyToken: outcome = exchangeLegacyToken(try LegacyTokenRequest(json: json), request)
            default: outcome = delegateDelayedLeave(try TokenRequest(json: json), request)
            }
        } catch let error as JSONParser.Failure {
            return notJSON(request, reason: error.description)
        } catch let error as JSONObjectReader.Failure {
            return notJSON(request, reason: error.description)
        } catch {
            return notJSON(request, reason: "\(error)")
        }
        switch outcome {
        case .success(let json):
            return Response(status: 200, headers: CORS.headers, body: json.serializedBytes(terminator: "\n"))
        case .failure(let error):
            return AuthorizationService.errorResponse(error, headers: CORS.headers)
        }
    }

    private func notJSON(_ request: Request, reason: String) -> Response {
        logger.error("Error reading request", metadata: ["RemoteAddr": "\(request.remoteAddress)", "err": .untrusted(reason)])
        return AuthorizationService.errorResponse(MatrixError.notJSON, headers: CORS.headers)
    }

    static func errorResponse(_ error: some ClientFacingError, headers: HTTPHeaders) -> Response {
        Response(status: error.status, headers: headers, body: error.matrixErrorBody)
    }
}
