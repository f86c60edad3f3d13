import Foundation
import Testing
import TriplineCore

@Suite struct AutomationDecodingTests {
    func errors(_ text: String) -> [TriplineError] { Automation.load(text: text, file: "rules.yaml").errors }

    @Test func decodesPrefectsJSONShape() throws {
        let json = """
            [{"name": "failures", "description": "", "enabled": true, "tags": ["ops"],
              "trigger": {"type": "event", "id": "7d6b2a58-46b1-4a6e-9d4c-3f7ae0f1d0a1", "match": {"prefect.resource.id": "prefect.flow-run.*"},
                          "match_related": [], "after": [], "expect": ["prefect.flow-run.Failed"], "for_each": ["prefect.resource.id"],
                          "posture": "Reactive", "threshold": 2, "within": "PT10M"},
              "actions": [{"type": "run-deployment", "source": "selected", "deployment_id": "8f6f5a8e-0b7e-4c77-9b4e-2f0e3c1d2a4b",
                           "parameters": {"x": 1}, "job_variables": null}],
              "actions_on_trigger": [], "actions_on_resolve": [], "owner_resource": null}]
            """
        let loaded = Automation.load(text: json, file: "a.json")
        #expect(loaded.errors.isEmpty)
        let automation = try #require(loaded.automations.first)
        guard case .event(let trigger) = automation.trigger else { return #expect(Bool(false)) }
        #expect(trigger.within == .minutes(10))
        #expect(trigger.threshold == 2)
        #expect(trigger.id.uuidString.lowercased() == "7d6b2a58-46b1-4a6e-9d4c-3f7ae0f1d0a1")
        #expect(automation.actions[0].fields["parameters"] == ["x": 1])
        #expect(automation.source?.line == 1)
    }

    @Test func rulesWithoutIdsGetTheSameIdsEveryTime() throws {
        let text = "name: a\ntrigger: {type: event, posture: Reactive}\nactions: []\n"
        let first = Automation.load(text: text, file: "x.yaml").automations[0]
        let second = Automation.load(text: text, file: "x.yaml").automations[0]
        #expect(first.id == second.id)
        #expect(first.trigger.id == second.trigger.id)
        #expect(first.id != Automation.load(text: text, file: "y.yaml").automations[0].id)
    }

    @Test func unknownFieldsAreRejectedByNameWithTheirPositionAndASuggestion() throws {
        let found = errors(
            """
            name: typo
            trigger:
              type: event
              posture: Reactive
              expects: [x]
            actions: []
            """)
        let error = try #require(found.first)
        #expect(found.count == 1)
        #expect(error.code == .unknownField)
        #expect(error.path == "trigger.expects")
        #expect(error.location == SourceLocation(file: "rules.yaml", line: 5, column: 3))
        #expect(error.hint == "did you mean \"expect\"?")
    }

    @Test func unknownTriggerAndActionTypesAreRejectedByName() {
        let found = errors(
            """
            - name: a
              trigger: {type: metric, posture: Reactive}
              actions: []
            - name: b
              trigger: {type: event, posture: Reactive}
              actions: [{type: send-notifications, body: x}]
            """)
        #expect(found.count == 2)
        #expect(found[0].description.contains("unknown trigger type \"metric\""))
        #expect(found[0].hint?.contains("Prefect Cloud") == true)
        #expect(found[1].description.contains("unknown action type \"send-notifications\""))
        #expect(found[1].hint == "did you mean \"send-notification\"?")
        #expect(found[1].location?.line == 6)
    }

    @Test func reportsEveryProblemAtOnce() {
        let found = errors(
            """
            name: many
            trigger: {type: event, posture: Sometimes, threshold: many, within: soon, colour: red}
            actions: [{type: change-flow-run-state}]
            """)
        let paths = Set(found.map(\.path))
        #expect(paths.isSuperset(of: ["trigger.posture", "trigger.threshold", "trigger.within", "trigger.colour", "actions[0].state"]))
    }

    @Test func compositeChecks() {
        let outOfRange = errors(
            """
            name: c
            trigger: {type: compound, require: 3, within: null, triggers: [{type: event, posture: Reactive}, {type: event, posture: Reactive}]}
            actions: []
            """)
        #expect(outOfRange.count == 1)
        #expect(outOfRange.first?.reason.contains("between 1 and the number of child triggers (2)") == true)
        let empty = errors("name: c\ntrigger: {type: sequence, within: null, triggers: []}\nactions: []\n")
        #expect(empty.first?.reason.contains("at least one child trigger") == true)
        let missingRequire = errors("name: c\ntrigger: {type: compound, within: 5, triggers: [{type: event, posture: Reactive}]}\nactions: []\n")
        #expect(missingRequire.first?.path == "trigger.require")
    }

    @Test func runDeploymentLoopsAreRejectedWithAFix() {
        let inferred = errors(
            """
            name: loop
            trigger: {type: event, posture: Reactive, expect: [prefect.flow-run.Running]}
            actions: [{type: run-deployment, source: inferred}]
            """)
        #expect(inferred.count == 1)
        #expect(inferred[0].code == .invalidAutomation)
        #expect(inferred[0].reason.contains("infinite loop"))
        let selectedUnfiltered = errors(
            """
            name: loop
            trigger: {type: event, posture: Reactive, expect: ["prefect.flow-run.*"], match: {prefect.resource.id: "prefect.flow-run.*"}}
            actions: [{type: run-deployment, deployment_id: 8f6f5a8e-0b7e-4c77-9b4e-2f0e3c1d2a4b}]
            """)
        #expect(selectedUnfiltered.count == 1)
        let filtered = errors(
            """
            name: ok
            trigger: {type: event, posture: Reactive, expect: ["prefect.flow-run.*"], match_related: {prefect.resource.id: prefect.deployment.abc}}
            actions: [{type: run-deployment, deployment_id: 8f6f5a8e-0b7e-4c77-9b4e-2f0e3c1d2a4b}]
            """)
        #expect(filtered.isEmpty)
        let disabled = errors(
            """
            name: off
            enabled: false
            trigger: {type: event, posture: Reactive, expect: [prefect.flow-run.Running]}
            actions: [{type: run-deployment, source: inferred}]
            """)
        #expect(disabled.isEmpty, "disabled automations cannot loop")
    }

    @Test func selectedActionsNeedTheirTarget() {
        let found = errors("name: s\ntrigger: {type: event, posture: Reactive}\nactions: [{type: pause-automation}]\n")
        #expect(found.first?.path == "actions[0].automation_id")
    }

    @Test func yamlScalarsFollowTheCoreSchema() throws {
        let loaded = Automation.load(
            text: """
                name: no
                trigger: {type: event, posture: Reactive, match: {flag: on, answer: "yes"}}
                actions: []
                """, file: "y.yaml")
        #expect(loaded.errors.isEmpty)
        #expect(loaded.automations.first?.name == "no", "`no` is a string, not false")
        let unquotedNumber = Automation.load(
            text: "name: n\ntrigger: {type: event, posture: Reactive, match: {port: 8080}}\nactions: []\n", file: "n.yaml")
        #expect(unquotedNumber.errors.first?.hint == "quote the value: label values are strings")
    }

    @Test func syntaxErrorsHaveAPosition() {
        let found = errors("name: x\ntrigger: {type: event,\n  posture: [\n")
        #expect(found.count == 1)
        #expect(found[0].code == .invalidYAML)
        #expect(found[0].location?.file == "rules.yaml")
        #expect((found[0].location?.line ?? 0) >= 2)
    }

    @Test func duplicateKeysAndDuplicateNamesAreReported() {
        #expect(errors("name: a\nname: b\ntrigger: {type: event, posture: Reactive}\nactions: []\n").first?.reason.contains("duplicate key") == true)
        let twice = errors(
            """
            - {name: same, trigger: {type: event, posture: Reactive}, actions: []}
            - {name: same, trigger: {type: event, posture: Reactive}, actions: []}
            """)
        #expect(twice.first?.reason.contains("also named") == true)
    }

    @Test func multipleYamlDocumentsAreRead() {
        let loaded = Automation.load(
            text: """
                name: one
                trigger: {type: event, posture: Reactive}
                actions: []
                ---
                name: two
                trigger: {type: event, posture: Reactive}
                actions: []
                """, file: "m.yaml")
        #expect(loaded.errors.isEmpty)
        #expect(loaded.automations.map(\.name) == ["one", "two"])
    }
}
