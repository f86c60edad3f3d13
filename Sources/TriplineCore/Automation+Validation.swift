extension Automation {
    /// The flow-run events every deployment run goes through; an enabled reactive automation that expects one of them
    /// and runs a deployment can start itself forever.
    static let loopingFlowRunEvents: Set<String> = [
        "prefect.flow-run.Scheduled", "prefect.flow-run.Pending", "prefect.flow-run.Running", "prefect.flow-run.*",
    ]

    /// Checks what Prefect rejects beyond the shape of the fields: run-deployment loops. Field-level checks (proactive
    /// `within`, `require`, empty composites) happen while decoding.
    func validate(path: String, at node: RuleNode?, diagnostics: Diagnostics) {
        guard enabled, case .event(let trigger) = trigger, trigger.posture == .reactive else { return }
        guard trigger.expect.contains(where: { $0.hasPrefix("prefect.flow-run.") }),
            !Self.loopingFlowRunEvents.isDisjoint(with: trigger.expect)
        else { return }
        for (index, action) in actions.enumerated() where action.type == "run-deployment" {
            let actionPath = path.isEmpty ? "actions[\(index)]" : "\(path).actions[\(index)]"
            let source = action.fields["source"]?.stringValue ?? "selected"
            if source == "inferred" {
                diagnostics.report(
                    .invalidAutomation,
                    "running an inferred deployment from a flow run state change event leads to an infinite loop of flow runs",
                    path: actionPath, at: node,
                    hint: "choose a specific deployment (source: selected, deployment_id: ...) and add filtering labels to match or match_related")
            } else if trigger.match.matchesEveryResource(ofKind: "prefect.flow-run"),
                (trigger.matchRelated.isEmpty ? [ResourceSpecification()] : trigger.matchRelated).contains(where: {
                    $0.matchesEveryResource(ofKind: "prefect.flow-run")
                })
            {
                diagnostics.report(
                    .invalidAutomation,
                    "running a selected deployment from a flow run state change event may lead to an infinite loop of flow runs",
                    path: actionPath, at: node,
                    hint: "add labels to match or match_related (e.g. related:deployment) that exclude runs of the deployment this action starts")
            }
        }
    }
}
