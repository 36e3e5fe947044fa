/// Claimed work waiting for an executor, in one lane per destination (the homeserver for restarts
/// and sends, the SFU for lookups), so that one server whose attempts stall cannot take every
/// executor (contract §13.3). Executors take lanes in turn, and a lane never has more than
/// `perLaneLimit` attempts running: with the default 4 executors and a limit of 2, a server that
/// never answers holds two and the other servers share the rest.
struct FairWorkQueue {
    /// Lookups go to the SFU, not to the job's homeserver; no server name contains a space.
    static let sfuLane = " SFU"

    let perLaneLimit: Int
    private var lanes: [String: [JobMachine.Work]] = [:]
    /// Lanes with queued work, in the order they are served next.
    private var turn: [String] = []
    private var running: [String: Int] = [:]
    private(set) var count = 0

    init(perLaneLimit: Int) {
        self.perLaneLimit = max(1, perLaneLimit)
    }

    static func lane(of work: JobMachine.Work) -> String {
        work.kind == .lookup ? sfuLane : work.serverName
    }

    /// Queued work an executor could start now: what waits in lanes below their limit.
    var startable: Int {
        lanes.reduce(0) { total, lane in
            total + min(lane.value.count, max(0, perLaneLimit - running[lane.key, default: 0]))
        }
    }

    mutating func add(_ work: JobMachine.Work) {
        let lane = Self.lane(of: work)
        if lanes[lane] == nil { turn.append(lane) }
        lanes[lane, default: []].append(work)
        count += 1
    }

    /// The next work to start, from the first lane in turn that is below its limit; that lane goes
    /// to the back of the turn. Work whose claim has less than `leaseLeft` milliseconds left is
    /// returned as `stale` instead of started: an attempt that could outlive its claim might run
    /// twice, so the caller hands such claims back to be claimed afresh.
    mutating func next(now: Int64, leaseLeft: Int64) -> (work: JobMachine.Work?, stale: [JobMachine.Work]) {
        var stale: [JobMachine.Work] = []
        for (position, lane) in turn.enumerated() where running[lane, default: 0] < perLaneLimit {
            var queued = lanes[lane] ?? []
            var found: JobMachine.Work?
            while found == nil, !queued.isEmpty {
                let candidate = queued.removeFirst()
                count -= 1
                if candidate.claim.expires - now < leaseLeft { stale.append(candidate) } else { found = candidate }
            }
            turn.remove(at: position)
            if queued.isEmpty {
                lanes[lane] = nil
            } else {
                lanes[lane] = queued
                turn.append(lane)
            }
            if let found {
                running[lane, default: 0] += 1
                return (found, stale)
            }
            // That lane held only stale work; the others are served below.
            let rest = next(now: now, leaseLeft: leaseLeft)
            return (rest.work, stale + rest.stale)
        }
        return (nil, stale)
    }

    /// An attempt `next` returned has ended.
    mutating func finished(_ work: JobMachine.Work) {
        let lane = Self.lane(of: work)
        let left = running[lane, default: 1] - 1
        running[lane] = left > 0 ? left : nil
    }

    /// Everything queued, for handing back at shutdown.
    mutating func removeAll() -> [JobMachine.Work] {
        defer {
            lanes = [:]
            turn = []
            count = 0
        }
        return turn.flatMap { lanes[$0] ?? [] }
    }
}
