public import Foundation

/// An automation: a trigger and the actions to run when it fires (Prefect's `Automation`).
public struct Automation: Sendable, Hashable {
    /// The automation's id.
    public var id: UUID
    /// Its name, unique among the loaded automations by convention (replay output names automations by it).
    public var name: String
    /// Free text.
    public var description: String
    /// Disabled automations are not evaluated at all.
    public var enabled: Bool
    /// Free-form tags.
    public var tags: [String]
    /// What makes it fire.
    public var trigger: Trigger
    /// Actions run on every firing.
    public var actions: [Action]
    /// Actions run when the automation enters the triggered state.
    public var actionsOnTrigger: [Action]
    /// Actions run when the automation resolves (Prefect never resolves; kept for compatibility).
    public var actionsOnResolve: [Action]
    /// The resource that owns this automation, if any.
    public var ownerResource: String?
    /// After a firing whose actions ran, further firings within this span run no actions and are recorded as
    /// suppressed (Tripline; `nil` for none).
    public var cooldown: TimeSpan?
    /// Where the automation was declared, for automations read from rules files.
    public var source: SourceLocation?

    /// Creates an automation.
    public init(
        id: UUID = UUID(),
        name: String,
        description: String = "",
        enabled: Bool = true,
        tags: [String] = [],
        trigger: Trigger,
        actions: [Action] = [Action(type: "do-nothing")],
        actionsOnTrigger: [Action] = [],
        actionsOnResolve: [Action] = [],
        ownerResource: String? = nil,
        cooldown: TimeSpan? = nil,
        source: SourceLocation? = nil
    ) {
        self.cooldown = cooldown
        self.id = id
        self.name = name
        self.description = description
        self.enabled = enabled
        self.tags = tags
        self.trigger = trigger
        self.actions = actions
        self.actionsOnTrigger = actionsOnTrigger
        self.actionsOnResolve = actionsOnResolve
        self.ownerResource = ownerResource
        self.source = source
    }
}

extension UUID {
    /// A UUID derived deterministically from `name` (RFC 9562 version 8 layout over a 128-bit FNV-1a hash), used to
    /// give rules without explicit ids the same ids on every start.
    public init(stableName name: String) {
        var low: UInt64 = 0xcbf2_9ce4_8422_2325
        var high: UInt64 = 0x6c62_272e_07bb_0142
        for byte in name.utf8 {
            low = (low ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            high = (high ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
            high = high &+ (low >> 29)
        }
        var bytes = [UInt8](repeating: 0, count: 16)
        for index in 0..<8 {
            bytes[index] = UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64(index)))
            bytes[index + 8] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(index)))
        }
        bytes[6] = (bytes[6] & 0x0f) | 0x80
        bytes[8] = (bytes[8] & 0x3f) | 0x80
        self.init(
            uuid: (
                bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7], bytes[8], bytes[9], bytes[10], bytes[11],
                bytes[12], bytes[13], bytes[14], bytes[15]
            ))
    }
}
