internal import Foundation

/// A point in time with microsecond precision, as Prefect's datetimes have: microseconds since the Unix epoch, UTC.
public struct Instant: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public var microseconds: Int64

    /// Creates an instant from microseconds since the epoch.
    public init(microseconds: Int64) { self.microseconds = microseconds }

    /// Creates an instant from seconds since the epoch; values beyond the representable range saturate (NaN is 0),
    /// so that a number from outside (a header, a record's timestamp) can never trap.
    public init(seconds: Double) { self.microseconds = saturatingMicroseconds(seconds) }

    /// Seconds since the epoch.
    public var seconds: Double { Double(microseconds) / 1_000_000 }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.microseconds < rhs.microseconds }

    /// The instant `duration` later.
    public static func + (lhs: Instant, rhs: TimeSpan) -> Instant { Instant(microseconds: lhs.microseconds &+ rhs.microseconds) }
    /// The instant `duration` earlier.
    public static func - (lhs: Instant, rhs: TimeSpan) -> Instant { Instant(microseconds: lhs.microseconds &- rhs.microseconds) }
    /// The time between two instants.
    public static func - (lhs: Instant, rhs: Instant) -> TimeSpan { TimeSpan(microseconds: lhs.microseconds &- rhs.microseconds) }

    public var description: String { rfc3339 }
}

/// A length of time with microsecond precision.
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The length in microseconds.
    public var microseconds: Int64

    /// Creates a span from microseconds.
    public init(microseconds: Int64) { self.microseconds = microseconds }
    /// Creates a span from seconds; values beyond the representable range saturate (NaN is 0).
    public init(seconds: Double) { self.microseconds = saturatingMicroseconds(seconds) }

    /// A span of whole seconds (saturating).
    public static func seconds(_ seconds: Int64) -> TimeSpan {
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000)
        return TimeSpan(microseconds: overflow ? (seconds < 0 ? .min : .max) : product)
    }
    /// A span of whole minutes.
    public static func minutes(_ minutes: Int64) -> TimeSpan { .seconds(minutes * 60) }
    /// No time at all.
    public static let zero = TimeSpan(microseconds: 0)

    /// The span in seconds.
    public var seconds: Double { Double(microseconds) / 1_000_000 }

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.microseconds < rhs.microseconds }
    public static func + (lhs: TimeSpan, rhs: TimeSpan) -> TimeSpan { TimeSpan(microseconds: lhs.microseconds + rhs.microseconds) }
    public static func * (lhs: TimeSpan, rhs: Int64) -> TimeSpan { TimeSpan(microseconds: lhs.microseconds * rhs) }

    public var description: String {
        let whole = microseconds / 1_000_000
        let fraction = microseconds % 1_000_000
        return fraction == 0 ? "\(whole)s" : "\(seconds)s"
    }
}

// MARK: - RFC 3339

extension Instant {
    /// Parses an RFC 3339 / ISO 8601 timestamp: `2024-05-01T12:00:00Z`, with optional fraction and a `Z` or `±HH:MM`
    /// offset. A timestamp without an offset is read as UTC (as Prefect does). A space may separate date and time.
    /// - Returns: `nil` when the text is not such a timestamp.
    public init?(rfc3339 text: String) {
        var bytes = Array(text.utf8)
        while let last = bytes.last, last == UInt8(ascii: " ") { bytes.removeLast() }
        guard bytes.count >= 19 else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= bytes.count else { return nil }
            var value = 0
            for index in from..<(from + count) {
                let byte = bytes[index]
                guard byte >= 48, byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard let year = digits(0, 4), bytes[4] == UInt8(ascii: "-"), let month = digits(5, 2), bytes[7] == UInt8(ascii: "-"),
            let day = digits(8, 2),
            [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(bytes[10]),
            let hour = digits(11, 2), bytes[13] == UInt8(ascii: ":"), let minute = digits(14, 2), bytes[16] == UInt8(ascii: ":"),
            let second = digits(17, 2)
        else { return nil }
        guard (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year), hour <= 23, minute <= 59,
            second <= 60
        else { return nil }
        var index = 19
        var micros = 0
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: ",") {
            index += 1
            var scale = 100_000
            let start = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 {
                micros += Int(bytes[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offsetSeconds = 0
        if index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "Z"), UInt8(ascii: "z"):
                index += 1
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                let sign = bytes[index] == UInt8(ascii: "+") ? 1 : -1
                guard let offsetHours = digits(index + 1, 2) else { return nil }
                var next = index + 3
                if next < bytes.count, bytes[next] == UInt8(ascii: ":") { next += 1 }
                guard let offsetMinutes = digits(next, 2) else { return nil }
                offsetSeconds = sign * (offsetHours * 3600 + offsetMinutes * 60)
                index = next + 2
            default:
                return nil
            }
        }
        guard index == bytes.count else { return nil }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetSeconds)
        self.microseconds = seconds * 1_000_000 + Int64(micros)
    }

    /// The instant as RFC 3339 in UTC: `2024-05-01T12:00:00Z`, or with microseconds when it has a fraction.
    public var rfc3339: String {
        let totalSeconds = microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
        let micros = Int(microseconds - totalSeconds * 1_000_000)
        let days = totalSeconds >= 0 ? totalSeconds / 86_400 : (totalSeconds - 86_399) / 86_400
        let secondOfDay = Int(totalSeconds - days * 86_400)
        let (year, month, day) = Self.civilFromDays(Int(days))
        func pad(_ value: Int, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        var text = "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondOfDay / 3600, 2)):\(pad(secondOfDay / 60 % 60, 2)):\(pad(secondOfDay % 60, 2))"
        if micros != 0 { text += "." + pad(micros, 6) }
        return text + "Z"
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}

// MARK: - Durations

extension TimeSpan {
    /// Parses a duration as Prefect accepts one: a number of seconds, an ISO 8601 duration (`PT10M`, `P1DT2H`), or a
    /// timedelta string (`0:10:00`, `1 day, 2:00:00`, `10:00` as minutes:seconds).
    /// - Returns: `nil` when the text is none of these.
    public init?(durationText text: String) {
        let trimmed = text.trimmingWhitespace()
        if let seconds = Double(trimmed), seconds.isFinite {
            self.init(seconds: seconds)
            return
        }
        if let iso = Self.parseISO8601(trimmed) {
            self = iso
            return
        }
        if let clock = Self.parseClock(trimmed) {
            self = clock
            return
        }
        return nil
    }

    private static func parseISO8601(_ text: String) -> TimeSpan? {
        var chars = Substring(text.uppercased())
        var negative = false
        if chars.first == "-" {
            negative = true
            chars = chars.dropFirst()
        }
        guard chars.first == "P", chars.count > 1 else { return nil }
        chars = chars.dropFirst()
        var inTime = false
        var number = ""
        var total = 0.0
        var sawComponent = false
        for char in chars {
            if char == "T" {
                guard !inTime, number.isEmpty else { return nil }
                inTime = true
                continue
            }
            if char.isNumber || char == "." || char == "," {
                number.append(char == "," ? "." : char)
                continue
            }
            guard let value = Double(number) else { return nil }
            number = ""
            sawComponent = true
            switch (char, inTime) {
            case ("Y", false): total += value * 365 * 86_400
            case ("M", false): total += value * 30 * 86_400
            case ("W", false): total += value * 7 * 86_400
            case ("D", false): total += value * 86_400
            case ("H", true): total += value * 3600
            case ("M", true): total += value * 60
            case ("S", true): total += value
            default: return nil
            }
        }
        guard number.isEmpty, sawComponent else { return nil }
        return TimeSpan(seconds: negative ? -total : total)
    }

    private static func parseClock(_ text: String) -> TimeSpan? {
        var rest = Substring(text)
        var days = 0.0
        if let range = rest.range(of: " day") {
            guard let value = Double(rest[rest.startIndex..<range.lowerBound]) else { return nil }
            days = value
            rest = rest[range.upperBound...]
            if rest.hasPrefix("s") { rest = rest.dropFirst() }
            if rest.hasPrefix(",") { rest = rest.dropFirst() }
            rest = Substring(String(rest).trimmingWhitespace())
            if rest.isEmpty { return TimeSpan(seconds: days * 86_400) }
        }
        let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let numbers = parts.map { Double($0) }
        guard numbers.allSatisfy({ $0 != nil && $0! >= 0 }) else { return nil }
        let values = numbers.map { $0! }
        let seconds = values.count == 3 ? values[0] * 3600 + values[1] * 60 + values[2] : values[0] * 60 + values[1]
        return TimeSpan(seconds: days * 86_400 + seconds)
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[first...last])
    }
}

/// `seconds` in microseconds, clamped to Int64's range; NaN becomes 0.
func saturatingMicroseconds(_ seconds: Double) -> Int64 {
    let value = (seconds * 1_000_000).rounded()
    if value.isNaN { return 0 }
    if value >= 9.2e18 { return .max }
    if value <= -9.2e18 { return .min }
    return Int64(value)
}
