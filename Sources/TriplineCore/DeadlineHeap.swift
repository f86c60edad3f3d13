/// A min-heap of (time, id) deadlines. Entries are not updated in place: push the new deadline and let the owner
/// skip stale entries when they surface (the owner knows the current deadline of each id).
struct DeadlineHeap: Sendable {
    private(set) var entries: [(time: Instant, id: Int)] = []

    var isEmpty: Bool { entries.isEmpty }
    var first: (time: Instant, id: Int)? { entries.first }

    @inline(__always)
    private static func less(_ a: (time: Instant, id: Int), _ b: (time: Instant, id: Int)) -> Bool {
        a.time != b.time ? a.time < b.time : a.id < b.id
    }

    mutating func push(_ time: Instant, _ id: Int) {
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
    mutating func pop() -> (time: Instant, id: Int)? {
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
