/// Polls `condition` every `interval` for up to `seconds`; returns whether it came true (a last check at the end).
@discardableResult
func eventually(
    within seconds: Double = 5, every interval: Duration = .milliseconds(1), _ condition: () async throws -> Bool
) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + .milliseconds(Int(seconds * 1_000))
    while clock.now < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: interval)
    }
    return try await condition()
}
