internal import Foundation
internal import Stencil
import Synchronization
public import TriplineCore

/// Action-field templates in Stencil's Jinja-like syntax (`{{ event.resource.id }}`, `{% for x in xs %}`, filters),
/// sandboxed: no template loader (so `include` and `extends` cannot read files), a bound on the rendered size and on
/// the iterations of all `for` loops of one rendering together, and arrays in the context cut to a fixed length.
public struct StencilTemplates: TemplateRenderer {
    /// The limits of one rendering.
    public struct Limits: Sendable {
        /// The largest output, in bytes of UTF-8.
        public var maximumOutputBytes = 64 * 1024
        /// The most `for` loop iterations in one rendering, all loops together.
        public var maximumLoopIterations = 10_000
        /// Arrays in the context are cut to this many items.
        public var maximumArrayItems = 1_000

        /// The defaults.
        public init() {}
    }

    /// The limits.
    public var limits: Limits

    /// Creates a renderer.
    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    public func render(_ template: String, context: JSONValue) throws(TriplineError) -> String {
        // Templates without tags are the common case (fixed texts); they need no parsing.
        if !template.contains("{") { return try bounded(template) }
        let budget = RenderBudget(iterations: limits.maximumLoopIterations, outputBytes: limits.maximumOutputBytes)
        var dictionary = (Self.convert(context, arrayLimit: limits.maximumArrayItems) as? [String: Any]) ?? [:]
        dictionary[RenderBudget.contextKey] = budget
        let environment = Self.environment()
        do {
            let nodes = try Self.parsed(template, environment: environment)
            let output = try renderNodes(nodes.nodes, Context(dictionary: dictionary, environment: environment))
            return try bounded(output)
        } catch let error as TriplineError {
            throw error
        } catch let error as TemplateSyntaxError {
            throw Self.convert(error)
        } catch {
            throw TriplineError(.invalidValue, "the template could not be rendered: \(error)")
        }
    }

    public func check(_ template: String) throws(TriplineError) {
        guard template.contains("{") else { return }
        let environment = Self.environment()
        let parsed = Template(templateString: template, environment: environment)
        do {
            _ = try TokenParser(tokens: parsed.tokens, environment: environment).parse()
        } catch let error as TemplateSyntaxError {
            throw Self.convert(error)
        } catch {
            throw TriplineError(.invalidValue, "template syntax error: \(error)")
        }
    }

    private func bounded(_ output: String) throws(TriplineError) -> String {
        if output.utf8.count > limits.maximumOutputBytes {
            throw TriplineError(.limitExceeded, "the rendered template is larger than \(limits.maximumOutputBytes) bytes")
        }
        return output
    }

    static func environment() -> Environment { shared }

    /// Parsed templates by text: the same few action templates render for every firing, so each is parsed once.
    static let cache = Mutex<[String: ParsedTemplate]>([:])

    static func parsed(_ template: String, environment: Environment) throws -> ParsedTemplate {
        if let hit = cache.withLock({ $0[template] }) { return hit }
        let nodes = try TokenParser(tokens: Template(templateString: template, environment: environment).tokens, environment: environment).parse()
        let parsed = ParsedTemplate(nodes: nodes)
        cache.withLock { cache in
            if cache.count >= 1_000 { cache.removeAll() }
            cache[template] = parsed
        }
        return parsed
    }

    /// One environment for every rendering. No loader: `include` and `extends` fail instead of reading files.
    /// Sharing it across threads is safe: its extensions' tag and filter tables are filled in `init` and only read
    /// afterwards, and each rendering makes its own template, parser and context.
    nonisolated(unsafe) static let shared = Environment(loader: nil, extensions: [TriplineExtension()])

    static func convert(_ error: TemplateSyntaxError) -> TriplineError {
        if let budget = error.budgetError { return budget }
        let location = error.token.map { SourceLocation(line: Int($0.sourceMap.location.lineNumber), column: $0.sourceMap.location.lineOffset + 1) }
        return TriplineError(.invalidValue, "template syntax error: \(error.reason)", location: location)
    }

    /// JSON as the plain Swift values Stencil reads (dictionaries, arrays, strings, numbers, booleans); nulls are
    /// left out of objects.
    static func convert(_ value: JSONValue, arrayLimit: Int) -> Any? {
        switch value {
        case .null: return nil
        case .bool(let flag): return flag
        case .int(let number): return Int(clamping: number)
        case .double(let number): return number
        case .string(let text): return text
        case .array(let items): return items.prefix(arrayLimit).map { convert($0, arrayLimit: arrayLimit) ?? "" }
        case .object(let object):
            var result: [String: Any] = [:]
            for (key, member) in object { if let converted = convert(member, arrayLimit: arrayLimit) { result[key] = converted } }
            return result
        }
    }

    /// The reverse, for the `json` filter.
    static func json(_ value: Any?) -> JSONValue {
        switch value {
        case nil: return .null
        case let flag as Bool: return .bool(flag)
        case let number as Int: return .int(Int64(number))
        case let number as Double: return .double(number)
        case let text as String: return .string(text)
        case let items as [Any]: return .array(items.map { json($0) })
        case let object as [String: Any]: return .object(object.filter { $0.key != RenderBudget.contextKey }.mapValues { json($0) })
        default: return .string("\(value!)")
        }
    }
}

extension TemplateSyntaxError {
    /// The budget error carried through Stencil, which wraps every error thrown while rendering.
    var budgetError: TriplineError? {
        reason.hasPrefix(RenderBudget.marker) ? TriplineError(.limitExceeded, String(reason.dropFirst(RenderBudget.marker.count))) : nil
    }
}

/// A parsed template's nodes.
/// - Important: Shared across threads: Stencil's nodes are built by the parser and only read while rendering (every
///   rendering's state lives in its own `Context`), which is why this wrapper may be `@unchecked Sendable`.
final class ParsedTemplate: @unchecked Sendable {
    let nodes: [any NodeType]

    init(nodes: [any NodeType]) {
        self.nodes = nodes
    }
}

/// What is left of one rendering's loop and output allowance.
final class RenderBudget {
    static let contextKey = "__tripline_render_budget"
    static let marker = "tripline-limit: "
    var iterations: Int
    let outputBytes: Int

    init(iterations: Int, outputBytes: Int) {
        self.iterations = iterations
        self.outputBytes = outputBytes
    }

    static func of(_ context: Context) -> RenderBudget? { context[contextKey] as? RenderBudget }
}

/// Tripline's template extension: a `for` tag that counts its iterations against the rendering's budget, and the
/// `json` filter.
final class TriplineExtension: Extension {
    override init() {
        super.init()
        registerTag("for", parser: BoundedForNode.parse)
        registerFilter("json") { value in StencilTemplates.json(value).jsonText }
        // Labels have dots in their names, which variable paths cannot spell: `{{ event.resource|label:"prefect.resource.id" }}`.
        registerFilter("label") { (value: Any?, arguments: [Any?]) -> Any? in
            guard let name = arguments.first as? String else { throw TemplateSyntaxError("label needs the label's name: label:\"prefect.resource.id\"") }
            return (value as? [String: Any])?[name]
        }
    }
}

/// `{% for x in xs [where cond] %}...{% empty %}...{% endfor %}` with `forloop.first|last|counter|counter0|length`,
/// bounded by the rendering's budget (Stencil's own loop has no bound).
final class BoundedForNode: NodeType {
    let resolvable: any Resolvable
    let variables: [String]
    let nodes: [any NodeType]
    let emptyNodes: [any NodeType]
    let condition: (any Stencil.Expression)?
    let token: Token?

    init(resolvable: any Resolvable, variables: [String], nodes: [any NodeType], emptyNodes: [any NodeType], condition: (any Stencil.Expression)?, token: Token) {
        self.resolvable = resolvable
        self.variables = variables
        self.nodes = nodes
        self.emptyNodes = emptyNodes
        self.condition = condition
        self.token = token
    }

    static func parse(_ parser: TokenParser, token: Token) throws -> any NodeType {
        let components = token.components
        guard components.count >= 4, components[2] == "in", components.count == 4 || (components.count > 5 && components[4] == "where") else {
            throw TemplateSyntaxError("'for' statements should use the syntax: `for <x> in <y> [where <condition>]`.")
        }
        let variables = components[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        let resolvable = try parser.compileResolvable(components[3], containedIn: token)
        let condition = components.count > 5 ? try parser.compileExpression(components: Array(components.suffix(from: 5)), token: token) : nil
        let body = try parser.parse(until(["endfor", "empty"]))
        guard let end = parser.nextToken() else { throw TemplateSyntaxError("`endfor` was not found.") }
        var empty: [any NodeType] = []
        if end.contents == "empty" {
            empty = try parser.parse(until(["endfor"]))
            guard parser.nextToken() != nil else { throw TemplateSyntaxError("`endfor` was not found.") }
        }
        return BoundedForNode(resolvable: resolvable, variables: variables, nodes: body, emptyNodes: empty, condition: condition, token: token)
    }

    func render(_ context: Context) throws -> String {
        var values: [Any]
        switch try resolvable.resolve(context) {
        case let array as [Any]: values = array
        case let object as [String: Any]: values = object.filter { $0.key != RenderBudget.contextKey }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        case let range as CountableClosedRange<Int>: values = Array(range.prefix(100_001))
        case let range as CountableRange<Int>: values = Array(range.prefix(100_001))
        default: values = []
        }
        if let condition {
            values = try values.filter { item in try bind(item, in: context) { try condition.evaluate(context: context) } }
        }
        if values.isEmpty { return try context.push { try renderNodes(emptyNodes, context) } }
        let budget = RenderBudget.of(context)
        var result = ""
        for (index, item) in values.enumerated() {
            if let budget {
                budget.iterations -= 1
                if budget.iterations < 0 {
                    throw TemplateSyntaxError(reason: RenderBudget.marker + "the template's loops ran more iterations than the limit allows")
                }
                if result.utf8.count > budget.outputBytes {
                    throw TemplateSyntaxError(reason: RenderBudget.marker + "the rendered template is larger than \(budget.outputBytes) bytes")
                }
            }
            let loop: [String: Any] = [
                "first": index == 0, "last": index == values.count - 1, "counter": index + 1, "counter0": index, "length": values.count,
            ]
            result += try context.push(dictionary: ["forloop": loop]) {
                try bind(item, in: context) { try renderNodes(nodes, context) }
            }
        }
        return result
    }

    private func bind<Result>(_ item: Any, in context: Context, _ body: () throws -> Result) throws -> Result {
        var scope: [String: Any] = [:]
        if variables.count >= 2, let pair = item as? (String, Any) {
            scope[variables[0]] = pair.0
            scope[variables[1]] = pair.1
        } else if let first = variables.first {
            scope[first] = item
        }
        return try context.push(dictionary: scope, closure: body)
    }
}
