internal import TriplineCore
public import Hummingbird
internal import Logging

/// The request context of the API: Hummingbird's core storage plus who is calling.
public struct TriplineRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The scope granted by the caller's token; `admin` when no tokens are configured (loopback only).
    public var scope: TokenScope?

    public init(source: Source) {
        self.coreContext = .init(source: source)
        self.scope = nil
    }
}
