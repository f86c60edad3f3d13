internal import Foundation

/// A min-heap of (time, id) deadlines, ties broken by id. Entries are not updated in place: push the new deadline
/// and let the owner skip stale entries when they surface (the owner knows the current deadline of each id).
struct DeadlineHeap<ID: Comparable & Sendable>: Sendable {
    private(set) var entries: [(time: Instant, id: ID)] = []

    var isEmpty: Bool { entries.isEmpty }
    var count: Int { entries.count }
    var first: (time: Instant, id: ID)? { entries.first }

    @inline(__always)
    private static func less(_ a: (time: Instant, id: ID), _ b: (time: Instant, id: ID)) -> Bool {
        a.time != b.time ? a.time < b.time : a.id < b.id
    }

    mutating func removeAll() { entries.removeAll(keepingCapacity: true) }

    /// The earliest entry after `time` for which `isCurrent` holds, without changing the heap: only entries at or
    /// before `time`, or not current, are looked past.
    func first(after time: Instant, where isCurrent: ((time: Instant, id: ID)) -> Bool) -> Instant? {
        var best: Instant?
        var pending = entries.isEmpty ? [] : [0]
        while let position = pending.popLast() {
            let entry = entries[position]
            if let best, entry.time >= best { continue }
            if entry.time > time, isCurrent(entry) {
                best = entry.time
                continue
            }
            for child in [2 * position + 1, 2 * position + 2] where child < entries.count { pending.append(child) }
        }
        return best
    }

    mutating func push(_ time: Instant, _ id: ID) {
        entries.append((time, id))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard Self.less(entries[child], entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    @discardableResult
    mutating func pop() -> (time: Instant, id: ID)? {
        guard !entries.isEmpty else { return nil }
        entries.swapAt(0, entries.count - 1)
        let top = entries.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < entries.count, Self.less(entries[left], entries[smallest]) { smallest = left }
            if right < entries.count, Self.less(entries[right], entries[smallest]) { smallest = right }
            if smallest == parent { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}

/// An event id ordered by its bytes (any fixed order will do), for the heap of remembered ids.
struct SeenID: Comparable, Sendable {
    let id: EventID

    init(_ id: EventID) { self.id = id }

    static func < (lhs: SeenID, rhs: SeenID) -> Bool {
        withUnsafeBytes(of: lhs.id.uuid) { left in withUnsafeBytes(of: rhs.id.uuid) { right in left.lexicographicallyPrecedes(right) } }
    }
}
