import FoundationEssentials

/// The stored form of a job: a JSON object with upstream's members (`Params`, `RestartedAt`, so that
/// a Redis hash shared with lk-jwt-service stays readable both ways, §8.9) plus our `Engine` state.
extension DelayedLeaveJob {
    public struct RecordError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    public func record() -> String {
        var engine: [JSONMember] = [
            JSONMember("JobId", .string(jobID)),
            JSONMember("State", .string(state.rawValue)),
            JSONMember("Version", .integer(version)),
            JSONMember("AlternativeIdentities", .array(alternativeIdentities.map(JSONValue.string))),
            JSONMember("LookupPhase", .string(lookupPhase.rawValue)),
        ]
        if actsAsOwner { engine.append(JSONMember("ActsAsOwner", .bool(true))) }
        if let waitingTimerDue { engine.append(JSONMember("WaitingTimerDue", .integer(waitingTimerDue))) }
        if let restartDeadline { engine.append(JSONMember("RestartDeadline", .integer(restartDeadline))) }
        if let lookup { engine.append(JSONMember("Lookup", lookup.json)) }
        if let restart { engine.append(JSONMember("Restart", restart.json)) }
        if let send { engine.append(JSONMember("Send", send.json)) }
        return JSONValue.object([
            JSONMember("Params", .object([
                JSONMember("DelayId", .string(delayID)),
                // Upstream stores Go durations: nanoseconds.
                JSONMember("DelayTimeout", .integer(delayTimeout.saturatingMultiplied(by: 1_000_000))),
                JSONMember("ServerName", .string(serverName)),
                JSONMember("LiveKitRoom", .string(key.room)),
                JSONMember("LiveKitIdentity", .string(key.identity)),
                // Upstream's name (its application-service mode keeps the owner here too).
                JSONMember("OwnerUserId", .string(ownerUserID)),
            ])),
            JSONMember("RestartedAt", .string(RFC3339.format(milliseconds: restartedAt))),
            JSONMember("Engine", .object(engine)),
        ]).serialized()
    }

    public init(record: String) throws(RecordError) {
        guard let json = try? JSONParser.parse(record), case .object = json, let params = json["Params"] else {
            throw RecordError(description: "not a JSON object with Params")
        }
        guard let delayID = params["DelayId"]?.stringValue, let timeout = params["DelayTimeout"]?.int64Value,
            let serverName = params["ServerName"]?.stringValue, let room = params["LiveKitRoom"]?.stringValue,
            let identity = params["LiveKitIdentity"]?.stringValue
        else { throw RecordError(description: "Params incomplete") }
        guard let restartedText = json["RestartedAt"]?.stringValue, let restartedAt = RFC3339.parse(restartedText) else {
            throw RecordError(description: "RestartedAt is not an RFC 3339 time")
        }
        self.init(
            key: JobKey(room: room, identity: identity), jobID: "", serverName: serverName,
            ownerUserID: params["OwnerUserId"]?.stringValue ?? "", delayID: delayID, delayTimeout: timeout / 1_000_000, restartedAt: restartedAt)
        guard let engine = json["Engine"] else {
            isForeign = true
            // Upstream keeps an owner only for jobs of its application-service endpoints, and then
            // restarts and sends as that owner.
            actsAsOwner = !ownerUserID.isEmpty
            return
        }
        guard let jobID = engine["JobId"]?.stringValue, let stateText = engine["State"]?.stringValue,
            let state = State(rawValue: stateText), let version = engine["Version"]?.int64Value
        else { throw RecordError(description: "Engine incomplete") }
        self.jobID = jobID
        self.state = state
        self.version = version
        if case .array(let alternatives)? = engine["AlternativeIdentities"] {
            alternativeIdentities = alternatives.compactMap(\.stringValue)
        }
        actsAsOwner = engine["ActsAsOwner"] == .bool(true)
        lookupPhase = engine["LookupPhase"]?.stringValue.flatMap(LookupPhase.init(rawValue:)) ?? .initial
        waitingTimerDue = engine["WaitingTimerDue"]?.int64Value
        restartDeadline = engine["RestartDeadline"]?.int64Value
        lookup = try engine["Lookup"].map(Activity.init(json:))
        restart = try engine["Restart"].map(Activity.init(json:))
        send = try engine["Send"].map(Activity.init(json:))
    }
}

extension Activity {
    var json: JSONValue {
        var members = [
            JSONMember("Due", .integer(due)), JSONMember("Interval", .integer(interval)), JSONMember("MaxElapsed", .integer(maxElapsed)),
        ]
        if let sequenceStart { members.append(JSONMember("SequenceStart", .integer(sequenceStart))) }
        if let claim {
            members.append(JSONMember("Claim", .object([JSONMember("Owner", .string(claim.owner)), JSONMember("Expires", .integer(claim.expires))])))
        }
        return .object(members)
    }

    init(json: JSONValue) throws(DelayedLeaveJob.RecordError) {
        guard let due = json["Due"]?.int64Value, let interval = json["Interval"]?.int64Value, let maxElapsed = json["MaxElapsed"]?.int64Value else {
            throw DelayedLeaveJob.RecordError(description: "activity incomplete")
        }
        var claim: Claim?
        if let owner = json["Claim"]?["Owner"]?.stringValue, let expires = json["Claim"]?["Expires"]?.int64Value {
            claim = Claim(owner: owner, expires: expires)
        }
        self.init(due: due, interval: interval, sequenceStart: json["SequenceStart"]?.int64Value, maxElapsed: maxElapsed, claim: claim)
    }
}
