/// The order in which SRV targets are tried (RFC 2782): by priority, and within one priority a
/// weighted random order, so that load spreads as the weights say.
enum SRVOrdering {
    static func order(_ records: [SRVRecord], random: any RandomSource) -> [SRVRecord] {
        let priorities = Set(records.map(\.priority)).sorted()
        var ordered: [SRVRecord] = []
        for priority in priorities {
            // Zero-weight records first, so they are picked only when the draw lands on zero.
            var remaining = records.filter { $0.priority == priority }.sorted { $0.weight == 0 && $1.weight != 0 }
            while !remaining.isEmpty {
                let total = remaining.reduce(0) { $0 + Int($1.weight) }
                let draw = Int(random.unitInterval() * Double(total + 1))
                var running = 0
                let index = remaining.firstIndex { record in
                    running += Int(record.weight)
                    return running >= draw
                } ?? remaining.count - 1
                ordered.append(remaining.remove(at: index))
            }
        }
        return ordered
    }
}
