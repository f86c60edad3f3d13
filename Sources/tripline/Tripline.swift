import ArgumentParser

@main
struct Tripline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tripline",
        abstract: "Event-driven automations: Prefect-compatible triggers over webhooks, Kafka and an event API.",
        discussion: """
            Rules (automations) are YAML or JSON in Prefect's automation shape. Start with:
              tripline validate rules/
              tripline replay --automations rules/automations --events events.jsonl --until 2024-05-01T13:00:00Z
              tripline explain --automations rules/automations --event event.json
            """,
        version: "0.1.0",
        subcommands: [
            Serve.self, Replay.self, Validate.self, Explain.self, Migrate.self, Webhooks.self, Deliveries.self, Runs.self, Bench.self, ExecRun.self,
        ]
    )
}
