import Testing
import TriplineCore
import TriplineTestKit

@Suite struct ResourceSpecificationTests {
    let resource = Resource(["prefect.resource.id": "prefect.flow-run.abc", "env": "prod", "team": "data"])

    @Test func labelsAreAndedAndListsAreOred() {
        #expect(ResourceSpecification(["env": ["prod"], "team": ["data"]]).matches(resource))
        #expect(!ResourceSpecification(["env": ["prod"], "team": ["web"]]).matches(resource))
        #expect(ResourceSpecification(["team": ["web", "data"]]).matches(resource))
    }

    @Test func aMissingLabelNeverMatchesEvenNegated() {
        #expect(!ResourceSpecification(["region": ["!eu"]]).matches(resource))
        #expect(!ResourceSpecification(["region": ["*"]]).matches(resource))
    }

    @Test func aListOfNegationsIsStillOred() {
        #expect(ResourceSpecification(["env": ["!prod", "!staging"]]).matches(resource))
        #expect(!ResourceSpecification(["env": ["!prod"]]).matches(resource))
    }

    @Test func anEmptyListMatchesNothingAndAnEmptySpecEverything() {
        #expect(!ResourceSpecification(["env": []]).matches(resource))
        #expect(ResourceSpecification().matches(resource))
        #expect(ResourceSpecification().includes([]))
        #expect(!ResourceSpecification(["env": ["prod"]]).includes([]))
    }

    @Test func literalValueIsOnlyForASinglePlainPattern() {
        #expect(ResourceSpecification(["prefect.resource.id": ["a.b"]]).literalValue(of: "prefect.resource.id") == "a.b")
        #expect(ResourceSpecification(["prefect.resource.id": ["a.*"]]).literalValue(of: "prefect.resource.id") == nil)
        #expect(ResourceSpecification(["prefect.resource.id": ["!a.b"]]).literalValue(of: "prefect.resource.id") == nil)
        #expect(ResourceSpecification(["prefect.resource.id": ["a", "b"]]).literalValue(of: "prefect.resource.id") == nil)
    }

    @Test func relatedLabelLookupUsesTheFirstResourceInTheRole() {
        let event = TriplineCore.Event(
            occurred: Instant(microseconds: 0), event: "x", resource: resource,
            related: [
                Resource(["prefect.resource.id": "d1", "prefect.resource.role": "deployment"]),
                Resource(["prefect.resource.id": "d2", "prefect.resource.role": "deployment", "tier": "gold"]),
            ])
        #expect(event.resourceLabel("related:deployment:prefect.resource.id") == "d1")
        #expect(event.resourceLabel("related:deployment:tier") == nil, "only the first resource in the role is read")
        #expect(event.resourceLabel("related:flow:prefect.resource.id") == nil)
        #expect(event.resourceLabel("env") == "prod")
    }
}

@Suite struct PayloadPredicateTests {
    let payload: [String: JSONValue] = [
        "ref": "refs/heads/main",
        "repository": ["full_name": "acme/api", "private": true],
        "commits": [["id": "c1"], ["id": "c2"]],
        "data": ["object": ["amount": 1500, "currency": "usd", "ratio": 0.5]],
        "dotted.key": "yes",
        "nothing": nil,
    ]

    func predicate(_ yaml: String) throws -> PayloadPredicate {
        let automations = try TestEvents.automations(
            """
            name: p
            trigger: {type: event, posture: Reactive, match_payload: \(yaml)}
            actions: []
            """)
        guard case .event(let trigger) = automations[0].trigger, let predicate = trigger.matchPayload else {
            Issue.record("no predicate")
            return PayloadPredicate([])
        }
        return predicate
    }

    @Test func globsOnDotPathsAndArrayIndices() throws {
        #expect(try predicate(#"{"ref": "refs/heads/main"}"#).matches(payload))
        #expect(try predicate(#"{"repository.full_name": ["acme/*", "!acme/legacy"]}"#).matches(payload))
        #expect(try !predicate(#"{"repository.full_name": "other/*"}"#).matches(payload))
        #expect(try predicate(#"{"commits.1.id": "c2"}"#).matches(payload))
        #expect(try !predicate(#"{"commits.2.id": "*"}"#).matches(payload), "an index past the end is a missing path")
        #expect(try predicate(#"{"dotted\\.key": "yes"}"#).matches(payload), "\\. escapes a dot inside a key")
    }

    @Test func pathsAreAnded() throws {
        #expect(try predicate(#"{"ref": "refs/heads/main", "repository.full_name": "acme/api"}"#).matches(payload))
        #expect(try !predicate(#"{"ref": "refs/heads/main", "repository.full_name": "acme/web"}"#).matches(payload))
    }

    @Test func missingPathsNeverMatchExceptExistsFalse() throws {
        #expect(try !predicate(#"{"missing": "!x"}"#).matches(payload))
        #expect(try !predicate(#"{"missing": {"ne": 1}}"#).matches(payload))
        #expect(try predicate(#"{"missing": {"exists": false}}"#).matches(payload))
        #expect(try predicate(#"{"nothing": {"exists": true}}"#).matches(payload), "a null value exists")
        #expect(try !predicate(#"{"nothing": "*"}"#).matches(payload), "null has no text for a glob")
    }

    @Test func comparisons() throws {
        #expect(try predicate(#"{"data.object.amount": {"gte": 1000}}"#).matches(payload))
        #expect(try !predicate(#"{"data.object.amount": {"gt": 1500}}"#).matches(payload))
        #expect(try predicate(#"{"data.object.amount": {"gte": 1000, "lt": 2000}}"#).matches(payload))
        #expect(try !predicate(#"{"data.object.amount": {"gte": 1000, "lt": 1200}}"#).matches(payload))
        #expect(try predicate(#"{"data.object.amount": {"eq": 1500.0}}"#).matches(payload), "numbers compare numerically")
        #expect(try predicate(#"{"data.object.currency": {"ne": "eur"}}"#).matches(payload))
        #expect(try predicate(#"{"data.object.ratio": {"lt": 1}}"#).matches(payload))
        #expect(try !predicate(#"{"data.object.currency": {"gt": 5}}"#).matches(payload), "a string never orders against a number")
        #expect(try predicate(#"{"data.object.currency": {"lt": "zzz"}}"#).matches(payload), "strings order lexicographically")
        #expect(try predicate(#"{"repository.private": {"eq": true}}"#).matches(payload))
    }

    @Test func numbersAndBooleansMatchGlobsByTheirJSONText() throws {
        #expect(try predicate(#"{"data.object.amount": "15*"}"#).matches(payload))
        #expect(try predicate(#"{"repository.private": "true"}"#).matches(payload))
    }

    @Test func badPredicatesAreRejectedByName() {
        let loaded = Automation.load(
            text: """
                name: p
                trigger: {type: event, posture: Reactive, match_payload: {"a": {"between": 1}, "b": {"gt": true}, "": "x", "c": 5}}
                actions: []
                """, file: "p.yaml")
        let messages = loaded.errors.map(\.description)
        #expect(messages.contains { $0.contains("unknown comparison \"between\"") })
        #expect(messages.contains { $0.contains("gt compares with a number or a string") })
        #expect(messages.contains { $0.contains("is not a valid payload path") })
        #expect(messages.contains { $0.contains("{\"eq\": 5}") }, "a bare number gets a hint to use eq")
        #expect(loaded.errors.allSatisfy { $0.location?.file == "p.yaml" && $0.location!.line == 2 })
    }
}
