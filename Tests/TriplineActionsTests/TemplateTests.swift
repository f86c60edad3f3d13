import Foundation
import Testing
import TriplineCore
import TriplineTemplates

@Suite struct TemplateTests {
    let templates = StencilTemplates()
    let context: JSONValue = [
        "automation": ["name": "disk full", "id": "a1"],
        "event": ["event": "host.disk.full", "resource": ["prefect.resource.id": "host.db1", "prefect.resource.name": "db1"], "payload": ["used": 99, "mounts": ["/", "/var"]]],
        "labels": ["prefect.resource.id": "host.db1"],
        "firing": ["key": "host.db1"],
    ]

    @Test func rendersFieldsFiltersAndLoops() throws {
        #expect(try templates.render("{{ automation.name }} on {{ event.resource|label:\"prefect.resource.name\" }}: {{ event.payload.used }}%", context: context)
            == "disk full on db1: 99%")
        #expect(try templates.render("{% for m in event.payload.mounts %}{{ m }}{% if not forloop.last %},{% endif %}{% endfor %}", context: context) == "/,/var")
        #expect(try templates.render("{{ event.payload|json }}", context: context) == #"{"mounts":["/","/var"],"used":99}"#)
        #expect(try templates.render("plain text", context: context) == "plain text")
        #expect(try templates.render("{{ nothing.here }}", context: context) == "", "unknown variables render empty")
    }

    @Test func syntaxErrorsNameTheLine() {
        let error = #expect(throws: TriplineError.self) { try templates.check("line one\n{% if x %}\nno end") }
        #expect(error?.location?.line == 2, "\(String(describing: error))")
        #expect(error?.reason.contains("endif") == true || error?.reason.contains("if") == true, "\(String(describing: error))")
        let filter = #expect(throws: TriplineError.self) { try templates.check("a\nb\n{{ x|nosuchfilter }}") }
        #expect(filter?.location?.line == 3)
        #expect(throws: Never.self) { try templates.check("{% for x in y %}{{ x }}{% endfor %}") }
    }

    @Test func isSandboxedAndBounded() throws {
        // No loader: include cannot read files.
        #expect(throws: TriplineError.self) { try templates.render("{% include \"/etc/passwd\" %}", context: context) }
        // Output size.
        var limits = StencilTemplates.Limits()
        limits.maximumOutputBytes = 100
        let small = StencilTemplates(limits: limits)
        let big = #expect(throws: TriplineError.self) { try small.render(String(repeating: "x", count: 101), context: context) }
        #expect(big?.code == .limitExceeded)
        // Loops: 1,000 × 1,000 iterations is over the default budget of 10,000, and stops early.
        let many: JSONValue = ["xs": .array((0..<1000).map { .int(Int64($0)) })]
        let started = Date()
        let loops = #expect(throws: TriplineError.self) {
            try templates.render("{% for a in xs %}{% for b in xs %}.{% endfor %}{% endfor %}", context: many)
        }
        #expect(loops?.code == .limitExceeded)
        #expect(Date().timeIntervalSince(started) < 2)
    }
}
