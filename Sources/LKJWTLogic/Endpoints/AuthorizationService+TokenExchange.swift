import Logging

extension AuthorizationService {
    /// What the three JSON endpoints share once their bodies are validated (§3.4 steps 5–14).
    struct Grant {
        var openIDToken: OpenIDToken
        /// `member.claimed_user_id`; the legacy endpoint has none to check.
        var claimedUserID: String?
        var claimedDeviceID: String
        var roomAlias: String
        var delayID: String
        var delayTimeout: Int64
        var logMetadata: Logger.Metadata
        /// Identity from the verified user ID.
        var identity: (String) -> String
        var alternativeIdentities: (String) -> [String]
    }

    func exchangeToken(_ body: TokenRequest, _ request: Request) -> Result<JSONValue, MatrixError> {
        if let failure = body.tokenValidationFailure() { return .failure(failure) }
        let grant = Grant(
            openIDToken: body.openIDToken, claimedUserID: body.claimedUserID, claimedDeviceID: body.claimedDeviceID,
            roomAlias: HashedName.roomAlias(roomID: body.roomID, slotID: body.slotID),
            delayID: body.delayID, delayTimeout: body.delayTimeout,
            logMetadata: ["matrixRoom": .untrusted(body.roomID), "MatrixRTCSlot": .untrusted(body.slotID)],
            identity: { HashedName.identity(userID: $0, deviceID: body.claimedDeviceID, memberID: body.memberID) },
            alternativeIdentities: { [HashedName.legacyIdentity(userID: $0, deviceID: body.claimedDeviceID)] })
        return issue(grant, request)
    }

    func exchangeLegacyToken(_ body: LegacyTokenRequest, _ request: Request) -> Result<JSONValue, MatrixError> {
        if let failure = body.validationFailure() { return .failure(failure) }
        let grant = Grant(
            openIDToken: body.openIDToken, claimedUserID: nil, claimedDeviceID: body.deviceID,
            roomAlias: HashedName.legacyRoomAlias(roomID: body.room),
            delayID: body.delayID, delayTimeout: body.delayTimeout,
            logMetadata: ["matrixRoom": .untrusted(body.room)],
            identity: { HashedName.legacyIdentity(userID: $0, deviceID: body.deviceID) },
            alternativeIdentities: { _ in [] })
        return issue(grant, request)
    }

    func delegateDelayedLeave(_ body: TokenRequest, _ request: Request) -> Result<JSONValue, MatrixError> {
        if let failure = body.delegationValidationFailure() { return .failure(failure) }
        let userID: String
        switch verifiedUser(body.openIDToken, claimedUserID: body.claimedUserID, request) {
        case .success(let verified): userID = verified
        case .failure(let error): return .failure(error)
        }
        let decision = configuration.accessPolicy.evaluate(serverName: body.openIDToken.matrixServerName)
        guard decision.isFull else {
            logger.info("Delegation refused", metadata: ["matrixId": .untrusted(userID), "access": "\(decision.access.rawValue)", "reason": .untrusted(decision.reason)])
            return .failure(.delegationForbidden)
        }
        let handover = DelayedLeaveHandover(
            serverName: body.openIDToken.matrixServerName, ownerUserID: userID, quota: jobQuota, delayID: body.delayID,
            delayTimeout: body.delayTimeout,
            roomAlias: HashedName.roomAlias(roomID: body.roomID, slotID: body.slotID),
            identity: HashedName.identity(userID: userID, deviceID: body.claimedDeviceID, memberID: body.memberID),
            alternativeIdentities: [HashedName.legacyIdentity(userID: userID, deviceID: body.claimedDeviceID)])
        if let failure = prepareDelegation(handover) { return .failure(failure) }
        if let failure = store(handover) { return .failure(failure) }
        return .success(.object([]))
    }

    private func issue(_ grant: Grant, _ request: Request) -> Result<JSONValue, MatrixError> {
        let userID: String
        switch verifiedUser(grant.openIDToken, claimedUserID: grant.claimedUserID, request) {
        case .success(let verified): userID = verified
        case .failure(let error): return .failure(error)
        }
        let decision = configuration.accessPolicy.evaluate(serverName: grant.openIDToken.matrixServerName)
        let delegating = !grant.delayID.isEmpty
        if delegating && !decision.isFull {
            logger.info("Delegation refused", metadata: ["matrixId": .untrusted(userID), "access": "\(decision.access.rawValue)", "reason": .untrusted(decision.reason)])
            return .failure(.delegationNotAllowed)
        }
        let identity = grant.identity(userID)
        let jwt: String
        do {
            // Restricted users publish through their own deployment's SFU (§6.1 rev. 2, upstream #222).
            jwt = try AccessToken.join(
                apiKey: configuration.apiKey, identity: identity, room: grant.roomAlias, canPublish: decision.isFull,
                canUpdateOwnMetadata: configuration.canUpdateOwnMetadata, issuedAt: clock.now()
            ).signed(with: signingKey)
        } catch {
            logger.error("Unable to create LiveKit token", metadata: ["lkId": .untrusted(identity), "err": .untrusted("\(error)")])
            return .failure(.internalServerError)
        }
        if decision.isFull {
            // Only a delegating request needs the handover (and the hash of its legacy identity).
            let handover = delegating ? DelayedLeaveHandover(
                serverName: grant.openIDToken.matrixServerName, ownerUserID: userID, quota: jobQuota, delayID: grant.delayID,
                delayTimeout: grant.delayTimeout,
                roomAlias: grant.roomAlias, identity: identity, alternativeIdentities: grant.alternativeIdentities(userID)) : nil
            // Resolve the client-server API first, so that a failed resolution leaves no room behind.
            if let handover, let failure = prepareDelegation(handover) { return .failure(failure) }
            if let failure = createRoom(grant.roomAlias, identity: identity, userID: userID) { return .failure(failure) }
            if let handover, let failure = store(handover) { return .failure(failure) }
        }
        var metadata = grant.logMetadata
        // Sized once: grown from the grant's two entries it was rehashed twice for every token.
        metadata.reserveCapacity(metadata.count + 7)
        metadata["matrixId"] = .untrusted(userID)
        metadata["claimedDeviceId"] = .untrusted(grant.claimedDeviceID)
        metadata["access"] = "\(decision.access.rawValue)"
        metadata["lkId"] = .untrusted(identity)
        metadata["room"] = .untrusted(grant.roomAlias)
        metadata["RemoteAddr"] = "\(request.remoteAddress)"
        metadata["Origin"] = .untrusted(request.headers["origin"] ?? "")
        logger.info("Issued LiveKit token", metadata: metadata)
        return .success(.object([JSONMember("url", .string(configuration.liveKitURL)), JSONMember("jwt", .string(jwt))]))
    }

    /// §13.4: a server admitted only through `*` is capped too; servers the operator lists are not.
    private var jobQuota: JobQuota {
        .standard(serverAdmittedByWildcard: configuration.accessPolicy == .everyone)
    }

    private func verifiedUser(_ token: OpenIDToken, claimedUserID: String?, _ request: Request) -> Result<String, MatrixError> {
        switch verifier.verify(accessToken: token.accessToken, serverName: token.matrixServerName) {
        case .rejected(let step, let reason):
            logger.error("Failed to look up user info", metadata: [
                "MatrixServerName": .untrusted(token.matrixServerName), "step": .untrusted(step), "err": .untrusted(reason), "RemoteAddr": "\(request.remoteAddress)",
            ])
            return .failure(.unauthorized)
        case .refused(let reason):
            logger.warning("Verification refused", metadata: [
                "MatrixServerName": "\(token.matrixServerName)", "err": "\(reason)", "RemoteAddr": "\(request.remoteAddress)",
            ])
            return .failure(.unknownServersBusy)
        case .verified(let userID):
            if let claimedUserID, claimedUserID != userID {
                logger.warning("Claimed user ID does not match the verified one", metadata: ["claimedUserId": .untrusted(claimedUserID), "matrixId": .untrusted(userID)])
                return .failure(.unauthorized)
            }
            return .success(userID)
        }
    }

    /// `access` names who may create rooms, for the log: `full`, or `applicationService` (AS endpoints).
    func createRoom(_ alias: String, identity: String, userID: String, access: String = "full") -> MatrixError? {
        let callStart = clock.now().unixSeconds
        do {
            let room = try roomService.createRoom(alias: alias)
            let now = clock.now().unixSeconds
            // A wall clock that stepped back during the call must not make an inverted range (a trap).
            let created = room.creationTime.map { (min(callStart, now)...max(callStart, now)).contains($0) } ?? false
            logger.info("LiveKit room ready", metadata: [
                "room": .untrusted(alias), "roomSid": .untrusted(room.sid ?? ""), "room_status": "\(created ? "created" : "reused")", "matrixUser": .untrusted(userID),
            ])
            return nil
        } catch {
            logger.error("Unable to create room on SFU", metadata: [
                "room": .untrusted(alias), "lkId": .untrusted(identity), "matrixUser": .untrusted(userID), "access": "\(access)", "err": .untrusted(error.message),
            ])
            return .roomCreationFailed
        }
    }

    private func prepareDelegation(_ handover: DelayedLeaveHandover) -> MatrixError? {
        guard let delegation else { return .delegationUnavailable }
        guard delegation.clientServerAPIBaseURL(for: handover.serverName) != nil else {
            logger.warning("Failed to resolve URL of Client-Server API", metadata: ["server name": .untrusted(handover.serverName)])
            return .csAPIUnresolvable
        }
        return nil
    }

    private func store(_ handover: DelayedLeaveHandover) -> MatrixError? {
        guard let delegation else { return .delegationUnavailable }
        return delegation.accept(handover).map(MatrixError.init)
    }
}
