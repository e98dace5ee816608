import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A serving study end to end on each kind of workload, against the simulated engine: a ShareGPT dataset, a JSONL
/// dataset, a BurstGPT trace replayed at its own times, a Mooncake trace run at a rate, and synthetic traffic with
/// every knob turned; a malformed row stops the study before it starts, naming the file and the line; a changed
/// file stops a resume.
@Suite(.serialized, .timeLimit(.minutes(5))) struct WorkloadCLITests {
    private func task(name: String, benchmark: String, budget: Int = 2, loadSeconds: Double = 0.1) -> String {
        """
        name: \(name)
        seed: 5
        parallel: 2
        parameters: {enable_prefix_caching: [false, true]}
        objective: {maximize: output_tokens_per_s}
        strategy: {name: grid, order: declared}
        budget: {max_trials: \(budget)}
        resources: {ports: 34000-34999}
        experiment:
          kind: serving
          server:
            command: ["{autotune}", simulate, --port, "{port}", --model, "{model}", --time-scale, "0.05", --load-seconds, "\(loadSeconds)"]
            model: sim
          benchmark: \(benchmark)
          timeouts: {deploy: 10s, ready: 20s, benchmark: 60s}
        """
    }

    /// Runs the study `name` described by `benchmark` in `directory`, and returns each trial's metrics and its
    /// result file, by trial number.
    private func study(
        _ name: String, benchmark: String, in directory: URL
    ) async throws -> [(metrics: [String: Double], result: [String: Any])] {
        try task(name: name, benchmark: benchmark).write(
            to: directory.appendingPathComponent("\(name).yaml"), atomically: true, encoding: .utf8)
        let run = try await autotune(["run", "\(name).yaml", "--quiet"], in: directory)
        #expect(run.status == 0, "\(name): \(run.stderr)")
        let listing = try await autotune(["trials", name, "--format", "json"], in: directory)
        let trials = try #require(
            try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]])
        #expect(trials.count == 2, "\(name): \(trials)")
        return try trials.map { trial in
            #expect(trial["state"] as? String == "completed", "\(name): \(trial)")
            let number = try #require(trial["number"] as? Int)
            let file = directory.appendingPathComponent("autotune-trials/\(name)/\(number)/result.json")
            let result = try #require(
                try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
            return (try #require(trial["metrics"] as? [String: Double]), result)
        }
    }

    private func write(_ text: String, to name: String, in directory: URL) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    @Test func aStudyRunsOnEveryKindOfWorkload() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }

        // ShareGPT: conversations of two turns, sent with their history, half behind one shared system prompt.
        let system = Array(repeating: "You answer questions about the weather briefly.", count: 8).joined(
            separator: " ")
        var conversations: [[String: Any]] = []
        for index in 0..<12 {
            var turns: [[String: String]] = []
            if index.isMultiple(of: 2) { turns.append(["from": "system", "value": system]) }
            turns += [
                ["from": "human", "value": "Question \(index): will it rain in city \(index) tomorrow?"],
                ["from": "gpt", "value": "It may, with a chance of \(index * 7 % 100) percent."],
                ["from": "human", "value": "And the day after, in city \(index)?"],
                ["from": "gpt", "value": "Dry."],
            ]
            conversations.append(["id": "c\(index)", "conversations": turns])
        }
        try JSONSerialization.data(withJSONObject: conversations).write(
            to: directory.appendingPathComponent("chat.json"))
        for (metrics, result) in try await study(
            "sharegpt",
            benchmark:
                "{endpoint: chat, concurrency: 4, requests: 16, warmup: 0, workload: {dataset: {path: chat.json, format: sharegpt, replacement: false}, turns: 2}}",
            in: directory)
        {
            #expect(metrics["requests"] == 16 && metrics["errors"] == 0, "\(metrics)")
            #expect((result["workload"] as? String)?.contains("sharegpt") == true, "\(result)")
        }

        // JSONL: every row asks for seven tokens, and seven come back.
        try write(
            (0..<20).map {
                #"{"prompt": "Row \#($0): summarise the history of the number \#($0).", "output_tokens": 7}"#
            }
            .joined(separator: "\n"), to: "requests.jsonl", in: directory)
        for (metrics, _) in try await study(
            "jsonl",
            benchmark: "{concurrency: 4, requests: 20, warmup: 0, workload: {dataset: {path: requests.jsonl}}}",
            in: directory)
        {
            #expect(metrics["output_tokens_mean"] == 7 && metrics["requests"] == 20, "\(metrics)")
            #expect((metrics["prompt_tokens_mean"] ?? 0) >= 9, "\(metrics)")
        }

        // BurstGPT, replayed four times as fast: every row once, in about its span over four.
        var csv = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n"
        for row in 0..<24 { csv += "\(Double(row) * 0.25),ChatGPT,\(40 + row),5,\(45 + row),Conversation log\n" }
        try write(csv, to: "burst.csv", in: directory)
        for (metrics, result) in try await study(
            "burstgpt", benchmark: "{warmup: 0, workload: {trace: {path: burst.csv, speed: 4}}}", in: directory)
        {
            #expect(metrics["requests"] == 24 && metrics["output_tokens_mean"] == 5, "\(metrics)")
            #expect(metrics["prompt_tokens_mean"] == 51.5, "the trace's lengths, as the server counted them")
            // 24 rows a quarter-second apart, four times as fast: 5.75 s of trace sent in about 1.4 s.
            #expect((metrics["duration_s"] ?? 0) > 1.2 && (metrics["duration_s"] ?? 99) < 4, "\(metrics)")
            #expect((result["workload"] as? String)?.contains("replayed ×4") == true, "\(result)")
        }

        // Mooncake, its gaps kept and its rate set by the level; shared blocks become shared prefixes.
        try write(
            (0..<16).map {
                #"{"timestamp": \#($0 * 100), "input_length": 700, "output_length": 3, "hash_ids": [1, \#(100 + $0)]}"#
            }.joined(separator: "\n"), to: "mooncake.jsonl", in: directory)
        for (metrics, _) in try await study(
            "mooncake",
            benchmark:
                "{rates: [40], requests: 16, warmup: 0, workload: {trace: {path: mooncake.jsonl, format: mooncake, timing: shape}}}",
            in: directory)
        {
            #expect(metrics["requests"] == 16 && metrics["r40.requests"] == 16, "\(metrics)")
            #expect(metrics["prompt_tokens_mean"] == 700 && metrics["output_tokens_mean"] == 3, "\(metrics)")
        }

        // Synthetic: long-tailed prompts behind two shared prefixes, a histogram of answer lengths, bursty arrivals
        // and conversations of three turns.
        for (metrics, result) in try await study(
            "synthetic",
            benchmark:
                "{rates: [30], requests: 18, warmup: 0, workload: {input: {lognormal: [30, 0.5]}, output: {histogram: {2: 1, 6: 1}}, arrivals: {gamma: 0.5}, shared_prefix: {count: 2, tokens: 64}, turns: 3}}",
            in: directory)
        {
            #expect(metrics["requests"] == 18 && metrics["errors"] == 0, "\(metrics)")
            #expect((metrics["prompt_tokens_mean"] ?? 0) > 64, "every prompt carries its 64-token prefix: \(metrics)")
            let mean = metrics["output_tokens_mean"] ?? 0
            #expect(mean >= 2 && mean <= 6, "\(metrics)")
            let description = try #require(result["workload"] as? String)
            #expect(
                description.contains("gamma arrivals (burstiness 0.5)") && description.contains("3 turns"),
                "\(description)")
        }
        // The report draws the recommended trial's requests against their prompt lengths.
        let report = try await autotune(["report", "synthetic", "-o", "synthetic.html"], in: directory)
        #expect(report.status == 0, "\(report.stderr)")
        let html = try String(contentsOf: directory.appendingPathComponent("synthetic.html"), encoding: .utf8)
        let section = try #require(html.range(of: "<section id=\"requests\"").map { html[$0.lowerBound...] })
        let requests = section[..<(section.range(of: "</section>")?.lowerBound ?? section.endIndex)]
        #expect(requests.contains("at r30</h2>"), "\(requests.prefix(200))")
        #expect(requests.components(separatedBy: "<circle class=\"point completed\"").count - 1 == 2 * 18)
    }

    @Test func aMalformedRowStopsTheStudyBeforeItStartsAndAChangedFileStopsAResume() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(
            """
            {"prompt": "one", "output_tokens": 3}
            {"prompt": "two", "output_tokens": 3}
            {"prompt": "three", "output_tokens": "many"}
            """, to: "bad.jsonl", in: directory)
        try task(name: "bad", benchmark: "{concurrency: 2, requests: 4, workload: {dataset: {path: bad.jsonl}}}")
            .write(to: directory.appendingPathComponent("bad.yaml"), atomically: true, encoding: .utf8)
        let bad = try await autotune(["run", "bad.yaml"], in: directory)
        #expect(bad.status == 2, "\(bad.stderr)")
        #expect(bad.stderr.contains("bad.jsonl:3: output_tokens: expected a positive whole number"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("autotune-trials").path))

        let original = (0..<8).map { #"{"prompt": "Request \#($0) of eight.", "output_tokens": 3}"# }
            .joined(separator: "\n")
        try write(original, to: "good.jsonl", in: directory)
        try task(
            name: "good",
            benchmark: "{concurrency: 2, requests: 8, warmup: 0, workload: {dataset: {path: good.jsonl}}}",
            loadSeconds: 1
        ).write(to: directory.appendingPathComponent("good.yaml"), atomically: true, encoding: .utf8)
        // Stopped while its first trial's server loads: one trial recorded, one to run.
        let first = try await autotune(["run", "good.yaml", "--quiet", "--parallel", "1"], in: directory) { process in
            let trial = directory.appendingPathComponent("autotune-trials/good/0").path
            while process.isRunning, !FileManager.default.fileExists(atPath: trial) {
                try await Task.sleep(for: .milliseconds(20))
            }
            kill(process.processIdentifier, SIGINT)
        }
        #expect(first.status == 130, "\(first.stderr)")

        // Someone edits the dataset before the study goes on: its next trial would see other requests.
        try write(original + "\n{\"prompt\": \"A ninth.\"}", to: "good.jsonl", in: directory)
        let resumed = try await autotune(["resume", "good", "--quiet"], in: directory)
        #expect(resumed.status == 2)
        #expect(
            resumed.stderr.contains("good.jsonl, which changed since the study started")
                && resumed.stderr.contains("restore the file"), "\(resumed.stderr)")
        // Nor can a changed task file carry the changed dataset in.
        let amended = try await autotune(["resume", "good", "--task", "good.yaml", "--quiet"], in: directory)
        #expect(amended.status == 2, "\(amended.stderr)")
        #expect(amended.stderr.contains("good.jsonl changed since the study started"), "\(amended.stderr)")

        // The file restored, the study finishes on the traffic it began with.
        try write(original, to: "good.jsonl", in: directory)
        let finished = try await autotune(["resume", "good", "--quiet"], in: directory)
        #expect(finished.status == 0, "\(finished.stderr)")
        let listing = try await autotune(["trials", "good", "--format", "json"], in: directory)
        let trials = try #require(
            try JSONSerialization.jsonObject(with: Data(listing.stdout.utf8)) as? [[String: Any]])
        #expect(trials.count == 2 && trials.allSatisfy { $0["state"] as? String == "completed" }, "\(trials)")
    }
}
