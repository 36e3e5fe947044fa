import Logging

/// The endpoints the homeserver forwards to us as our application service (AS-MODE.md B2): the
/// homeserver authenticated the user (client endpoints) or the calling server (federation), so
/// there is no OpenID round trip; membership is checked with `is_joined` instead.
extension AuthorizationService {
    /// A participant an application-service token is issued for.
    struct ApplicationServiceParticipant {
        var matrixRoomID: String
        var userID: String
        var liveKitRoom: String
        var identity: String
        var logMetadata: Logger.Metadata
    }

    func respondAsApplicationService(_ route: ApplicationServiceRoute, _ request: Request, client: ApplicationServiceClient) -> Response {
        let headers = route.headers
        // Method gate first (B2.1, contract §3.2).
        switch route {
        case .ping:
            break
        case .transaction:
            guard request.method == "PUT" else {
                return AuthorizationService.errorResponse(MatrixError.methodNotAllowed, headers: headers + [("Allow", "PUT")])
            }
        case .clientGetToken, .clientDelegateDelayedLeave, .federationGetToken:
            switch request.method {
            case .options:
                return Response(status: 200, headers: headers)
            case .post:
                break
            default:
                return AuthorizationService.errorResponse(MatrixError.methodNotAllowed, headers: headers + [("Allow", "POST, OPTIONS")])
            }
        }
        // Then the homeserver's token, before the body is looked at.
        if let failure = homeserverAuthenticationFailure(request) {
            logger.warning("Rejected homeserver request", metadata: ["RemoteAddr": "\(request.remoteAddress)", "err": "\(failure.message)"])
            return AuthorizationService.errorResponse(failure, headers: headers)
        }
        let body: [UInt8]
        switch request.body {
        case .timedOut:
            logger.warning("Request body timed out", metadata: ["RemoteAddr": "\(request.remoteAddress)", "timeout": "\(Request.bodyTimeout)"])
            return AuthorizationService.errorResponse(MatrixError.bodyTimedOut, headers: headers)
        case .tooLarge:
            // Pings and transactions carry nothing we read; a large transaction is still delivered.
            if route == .ping || route == .transaction { return Response(status: 200, headers: headers, body: Array("{}\n".utf8)) }
            logger.error("Error reading request", metadata: ["RemoteAddr": "\(request.remoteAddress)", "err": "body larger than \(Request.maximumBodySize) bytes"])
            return AuthorizationService.errorResponse(MatrixError.tooLarge, headers: headers)
        case .bytes(let bytes):
            body = bytes
        }
        let outcome: Result<JSONValue, MatrixError>
        do {
            switch route {
            case .ping, .transaction:
                return Response(status: 200, headers: headers, body: Array("{}\n".utf8))
            case .clientGetToken:
                outcome = clientToken(try ApplicationServiceTokenRequest(.client, json: try JSONParser.parse(body)), request, client: client)
            case .federationGetToken:
                outcome = federationToken(try ApplicationServiceTokenRequest(.federation, json: try JSONParser.parse(body)), request, client: client)
            case .clientDelegateDelayedLeave:
                outcome = delegateApplicationServiceLeave(try ApplicationServiceTokenRequest(.delegation, json: try JSONParser.parse(body)), request, client: client)
            }
        } catch {
            logger.error("Error reading request", metadata: ["RemoteAddr": "\(request.remoteAddress)", "err": .untrusted("\(error)")])
            return AuthorizationService.errorResponse(MatrixError.notJSON, headers: headers)
        }
        switch outcome {
        case .success(let json):
            return Response(status: 200, headers: headers, body: json.serializedBytes(terminator: "\n"))
        case .failure(let error):
            return AuthorizationService.errorResponse(error, headers: headers)
        }
    }

    /// B2.1: `Authorization: Bearer <hs_token>`, compared in constant time. The scheme is matched
    /// without regard to case (RFC 9110); anything else, or an empty token, counts as missing.
    func homeserverAuthenticationFailure(_ request: Request) -> MatrixError? {
        guard let settings = configuration.applicationService else { return .unrecognisedHomeserverToken }
        guard let authorization = request.headers["authorization"], authorization.utf8.count > 7,
            authorization.utf8.prefix(7).map({ $0 | 0x20 }) == Array("bearer ".utf8)
        else { return .missingHomeserverToken }
        let token = Array(authorization.utf8.dropFirst(7))
        return Digest.constantTimeEquals(token, Array(settings.hsToken.utf8)) ? nil : .unrecognisedHomeserverToken
    }

    /// What the homeserver says in an identity header; absent or not ASCII reads as empty.
    static func homeserverHeader(_ request: Request, _ name: String) -> String {
        guard let value = request.headers[name], value.utf8.allSatisfy({ $0 < 0x80 }) else { return "" }
        return value
    }

    // MARK: Client get_token (AS-MODE-NOTES §2.4)

    func clientToken(_ body: ApplicationServiceTokenRequest, _ request: Request, client: ApplicationServiceClient) -> Result<JSONValue, MatrixError> {
        if let failure = body.validationFailure() { return .failure(failure) }
        let userID = Self.homeserverHeader(request, "x-matrix-user-identifier")
        guard !userID.isEmpty else { return .failure(.missingRequestAuthorization) }
        let isLocal = body.serverName.isEmpty || body.serverName == client.serverName
        let metadata: Logger.Metadata = [
            "matrixId": .untrusted(userID), "matrixRoom": .untrusted(body.roomID), "MatrixRTCSlot": .untrusted(body.slotID),
            "RemoteAddr": "\(request.remoteAddress)",
        ]
        if isLocal, body.url != configuration.liveKitURL {
            logger.warning("Requested LiveKit URL does not match this service's", metadata: metadata.merging(["url": .untrusted(body.url)]) { $1 })
            return .failure(.urlMismatch)
        }
        guard MatrixUserID(userID) != nil else { return .failure(.malformedUserIdentifier) }
        let baseURL: String
        switch resolveHomeserver(client) {
        case .success(let resolved): baseURL = resolved
        case .failure(let error): return .failure(error)
        }
        switch membership(client, roomID: body.roomID, .user(userID), baseURL: baseURL, metadata: metadata) {
        case .failure(let error): return .failure(error)
        case .success(false): return .failure(.notRoomMember)
        case .success(true): break
        }
        guard isLocal else { return relayToRemote(body, userID: userID, client: client, baseURL: baseURL, metadata: metadata) }
        let participant = ApplicationServiceParticipant(
            matrixRoomID: body.roomID, userID: userID, liveKitRoom: HashedName.roomAlias(roomID: body.roomID, slotID: body.slotID),
            identity: HashedName.applicationServiceIdentity(userID: userID, memberID: body.memberID), logMetadata: metadata)
        return issueApplicationServiceToken(participant, canPublish: true)
    }

    /// B2.7, AS-MODE-NOTES §2.4 step 7R and §2.10: the SFU belongs to another homeserver, whose
    /// service mints the token; our homeserver relays the request over federation.
    private func relayToRemote(
        _ body: ApplicationServiceTokenRequest, userID: String, client: ApplicationServiceClient, baseURL: String, metadata: Logger.Metadata
    ) -> Result<JSONValue, MatrixError> {
        var metadata = metadata
        metadata["destination"] = .untrusted(body.serverName)
        switch membership(client, roomID: body.roomID, .server(body.serverName), baseURL: baseURL, metadata: metadata) {
        case .failure(let error): return .failure(error)
        case .success(false): return .failure(.targetServerNotJoined)
        case .success(true): break
        }
        let relayed = JSONValue.object([
            JSONMember("user_id", .string(userID)), JSONMember("url", .string(body.url)), JSONMember("room_id", .string(body.roomID)),
            JSONMember("slot_id", .string(body.slotID)), JSONMember("member_id", .string(body.memberID)),
        ])
        let answer: ApplicationServiceClient.FederationAnswer
        switch client.federationProxy(
            destination: body.serverName, method: "POST", path: "/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/get_token", body: relayed,
            baseURL: baseURL)
        {
        case .failure(let failure):
            logger.error("Unable to relay the token request", metadata: metadata.merging(["err": .untrusted(failure.reason)]) { $1 })
            return .failure(.destinationUnreachable)
        case .success(let relayedAnswer):
            answer = relayedAnswer
        }
        guard (200...299).contains(answer.status) else {
            let errcode = answer.content?["errcode"]?.stringValue
            logger.error("The destination refused the token request", metadata: metadata.merging([
                "status": "\(answer.status)", "errcode": .untrusted(errcode ?? ""),
            ]) { $1 })
            switch (answer.status, errcode) {
            case (403, "M_FORBIDDEN"): return .failure(.notRoomMemberAtDestination)
            case (400, "M_INVALID_PARAM"): return .failure(.destinationRejectedURL)
            default: return .failure(.destinationUnreachable)
            }
        }
        guard let jwt = answer.content?["jwt"]?.stringValue else {
            logger.error("The destination answered without a token", metadata: metadata.merging(["status": "\(answer.status)"]) { $1 })
            return .failure(.destinationUnreachable)
        }
        logger.info("Relayed LiveKit token", metadata: metadata)
        return .success(.object([JSONMember("jwt", .string(jwt))]))
    }

    // MARK: Federation get_token (AS-MODE-NOTES §2.5)

    func federationToken(_ body: ApplicationServiceTokenRequest, _ request: Request, client: ApplicationServiceClient) -> Result<JSONValue, MatrixError> {
        if let failure = body.validationFailure() { return .failure(failure) }
        let origin = Self.homeserverHeader(request, "x-matrix-origin")
        guard !origin.isEmpty else { return .failure(.missingRequestOrigin) }
        guard let user = MatrixUserID(body.userID) else { return .failure(.malformedUserIdentifier) }
        let metadata: Logger.Metadata = [
            "matrixId": .untrusted(body.userID), "origin": .untrusted(origin), "matrixRoom": .untrusted(body.roomID),
            "MatrixRTCSlot": .untrusted(body.slotID), "RemoteAddr": "\(request.remoteAddress)",
        ]
        guard user.serverName == origin else {
            logger.warning("Federated user does not belong to the requesting server", metadata: metadata)
            return .failure(.userNotOfOrigin)
        }
        let baseURL: String
        switch resolveHomeserver(client) {
        case .success(let resolved): baseURL = resolved
        case .failure(let error): return .failure(error)
        }
        switch membership(client, roomID: body.roomID, .server(client.serverName), baseURL: baseURL, metadata: metadata) {
        case .failure(let error): return .failure(error)
        case .success(false): return .failure(.thisServerNotJoined)
        case .success(true): break
        }
        switch membership(client, roomID: body.roomID, .user(body.userID), baseURL: baseURL, metadata: metadata) {
        case .failure(let error): return .failure(error)
        case .success(false): return .failure(.notRoomMember)
        case .success(true): break
        }
        guard body.url == configuration.liveKitURL else {
            logger.warning("Requested LiveKit URL does not match this service's", metadata: metadata.merging(["url": .untrusted(body.url)]) { $1 })
            return .failure(.urlMismatch)
        }
        let participant = ApplicationServiceParticipant(
            matrixRoomID: body.roomID, userID: body.userID, liveKitRoom: HashedName.roomAlias(roomID: body.roomID, slotID: body.slotID),
            identity: HashedName.applicationServiceIdentity(userID: body.userID, memberID: body.memberID), logMetadata: metadata)
        // B2.5: federated participants publish through their own deployment's SFU (upstream #222).
        return issueApplicationServiceToken(participant, canPublish: false)
    }

    // MARK: Client delegate_delayed_leave (AS-MODE-NOTES §2.6, AS-MODE.md B3)

    func delegateApplicationServiceLeave(
        _ body: ApplicationServiceTokenRequest, _ request: Request, client: ApplicationServiceClient
    ) -> Result<JSONValue, MatrixError> {
        if let failure = body.validationFailure() { return .failure(failure) }
        let userID = Self.homeserverHeader(request, "x-matrix-user-identifier")
        guard !userID.isEmpty else { return .failure(.missingRequestAuthorization) }
        let metadata: Logger.Metadata = [
            "matrixId": .untrusted(userID), "matrixRoom": .untrusted(body.roomID), "delayId": .untrusted(body.delayID),
            "RemoteAddr": "\(request.remoteAddress)",
        ]
        guard body.url == configuration.liveKitURL else {
            logger.warning("Requested LiveKit URL does not match this service's", metadata: metadata.merging(["url": .untrusted(body.url)]) { $1 })
            return .failure(.urlMismatch)
        }
        let baseURL: String
        switch resolveHomeserver(client) {
        case .success(let resolved): baseURL = resolved
        case .failure(let error): return .failure(error)
        }
        let delay: Int64
        switch client.delayedEvent(delayID: body.delayID, userID: userID, baseURL: baseURL) {
        case .found(let roomID, let found) where roomID == body.roomID:
            delay = found
        case .found, .notFound:
            logger.info("Delayed event not found for this user and room", metadata: metadata)
            return .failure(.unknownDelayID)
        case .failed(let reason):
            logger.warning("Unable to look up the delayed event", metadata: metadata.merging(["err": .untrusted(reason)]) { $1 })
            return .failure(.delayedEventLookupFailed)
        }
        guard let delegation else { return .failure(.delegationUnavailable) }
        let handover = DelayedLeaveHandover(
            serverName: client.serverName, ownerUserID: userID, actsAsOwner: true,
            // The operator configured this homeserver: only the per-user cap applies (§13.4).
            quota: .standard(serverAdmittedByWildcard: false), delayID: body.delayID, delayTimeout: delay,
            roomAlias: HashedName.roomAlias(roomID: body.roomID, slotID: body.slotID),
            identity: HashedName.applicationServiceIdentity(userID: userID, memberID: body.memberID))
        if let refusal = delegation.accept(handover) { return .failure(MatrixError(refusal)) }
        return .success(.object([]))
    }

    // MARK: Shared steps

    private func resolveHomeserver(_ client: ApplicationServiceClient) -> Result<String, MatrixError> {
        switch client.baseURL() {
        case .success(let baseURL):
            return .success(baseURL)
        case .failure(let failure):
            logger.warning("Failed to resolve URL of Client-Server API", metadata: ["server name": .untrusted(client.serverName), "err": .untrusted(failure.reason)])
            return .failure(.csAPIUnresolvable)
        }
    }

    private func membership(
        _ client: ApplicationServiceClient, roomID: String, _ subject: ApplicationServiceClient.Subject, baseURL: String, metadata: Logger.Metadata
    ) -> Result<Bool, MatrixError> {
        switch client.isJoined(roomID: roomID, subject, baseURL: baseURL) {
        case .success(let joined):
            if !joined { logger.info("Membership check refused the request", metadata: metadata.merging(["subject": .untrusted("\(subject)")]) { $1 }) }
            return .success(joined)
        case .failure(let failure):
            logger.error("Unable to verify room membership", metadata: metadata.merging(["err": .untrusted(failure.reason)]) { $1 })
            return .failure(.membershipUnverifiable)
        }
    }

    /// The one place where an application-service token is minted (local users and federated
    /// ones): JWT, then CreateRoom on every such token (upstream #228), then `{"jwt": …}` only.
    /// Tracking a participant (the membership monitor) belongs here.
    func issueApplicationServiceToken(_ participant: ApplicationServiceParticipant, canPublish: Bool) -> Result<JSONValue, MatrixError> {
        let jwt: String
        do {
            jwt = try AccessToken.join(
                apiKey: configuration.apiKey, identity: participant.identity, room: participant.liveKitRoom, canPublish: canPublish,
                canUpdateOwnMetadata: configuration.canUpdateOwnMetadata, issuedAt: clock.now()
            ).signed(with: signingKey)
        } catch {
            logger.error("Unable to create LiveKit token", metadata: ["lkId": .untrusted(participant.identity), "err": .untrusted("\(error)")])
            return .failure(.internalServerError)
        }
        if let failure = createRoom(participant.liveKitRoom, identity: participant.identity, userID: participant.userID, access: "applicationService") {
            return .failure(failure)
        }
        var metadata = participant.logMetadata
        metadata["lkId"] = .untrusted(participant.identity)
        metadata["room"] = .untrusted(participant.liveKitRoom)
        metadata["canPublish"] = "\(canPublish)"
        logger.info("Issued LiveKit token", metadata: metadata)
        membership?.track(
            matrixRoomID: participant.matrixRoomID, matrixUserID: participant.userID, liveKitRoom: participant.liveKitRoom,
            liveKitIdentity: participant.identity)
        return .success(.object([JSONMember("jwt", .string(jwt))]))
    }
}
