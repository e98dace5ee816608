import Foundation
import Testing

/// Runs autotune in `directory` behind a pseudo-terminal `columns` wide (util-linux `script`), as a person's
/// terminal runs it; returns what the terminal showed, carriage returns removed.
private func onTerminal(_ arguments: [String], columns: Int, in directory: URL) async throws -> String {
    let words = ([executable.path] + arguments).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
    let run = try await command(
        "/usr/bin/script", ["-qec", "stty cols \(columns) rows 50; " + words.joined(separator: " "), "/dev/null"],
        in: directory)
    #expect(run.status == 0, "\(run.stdout)")
    return run.stdout.replacingOccurrences(of: "\r", with: "")
}

/// A study with the long names of a serving study and long failures, as the quickstart's.
private func studyWithLongNames(in directory: URL) async throws {
    try """
    name: wide
    parameters:
      max_num_batched_tokens: [1024, 2048, 4096]
      gpu_memory_utilization: [0.85, 0.95]
      enable_chunked_prefill: {type: bool}
    strategy: grid
    objective: {maximize: output_tokens_per_s_per_gpu}
    experiment:
      command: [/bin/sh, -c, 'if [ {max_num_batched_tokens} = 1024 ]; then echo "ERROR ValueError: max_num_batched_tokens ({max_num_batched_tokens}) is smaller than max_model_len (4096). Enable chunked prefill or raise max_num_batched_tokens." >&2; exit 1; fi; echo "{{\\"output_tokens_per_s_per_gpu\\": {max_num_batched_tokens}, \\"ttft_ms_p99\\": 12.5}}"', x, '{gpu_memory_utilization}', '{enable_chunked_prefill}']
    """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
    let run = try await autotune(["run", "task.yaml", "--quiet"], in: directory)
    #expect(run.status == 0, "\(run.stderr)")
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct TerminalViewTests {
    /// On a 120-column terminal the trials table fits: headers wrap at underscores, each failure is on its own
    /// indented line under its trial, cut with … at the edge.
    @Test func theTrialsTableFitsA120ColumnTerminal() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await studyWithLongNames(in: directory)
        let shown = try await onTerminal(["trials", "wide"], columns: 120, in: directory)
        let lines = shown.split(separator: "\n").map(String.init)
        #expect(lines.allSatisfy { $0.count <= 120 }, "\(lines.map(\.count).max() ?? 0) columns:\n\(shown)")
        #expect(lines.contains { $0.contains("max_num_") } && lines.contains { $0.contains("batched_") }, "\(shown)")
        let failures = lines.filter { $0.hasPrefix("    ") && $0.contains("ValueError") }
        #expect(failures.count == 4, "\(shown)")
        #expect(failures.allSatisfy { $0.hasSuffix("…") }, "\(shown)")
        // Each failure follows its trial's row.
        for (index, line) in lines.enumerated() where failures.contains(line) {
            #expect(lines[index - 1].contains("failed"), "\(shown)")
        }
        #expect(lines.filter { $0.contains("completed") }.count == 8)
    }

    /// On 80 columns the table still fits with its headers wrapped; on 50 it does not, and is shown one block per
    /// trial, as `-x` shows it anywhere; no line passes the edge.
    @Test func aNarrowTerminalGetsWrappedHeadersThenATrialPerBlock() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await studyWithLongNames(in: directory)
        let eighty = try await onTerminal(["trials", "wide"], columns: 80, in: directory)
        let lines = eighty.split(separator: "\n").map(String.init)
        #expect(lines.allSatisfy { $0.count <= 80 }, "\(eighty)")
        #expect(lines.contains { $0.hasPrefix("number  state") }, "\(eighty)")
        for (columns, arguments) in [(50, ["trials", "wide"]), (120, ["trials", "wide", "-x"])] {
            let shown = try await onTerminal(arguments, columns: columns, in: directory)
            let blocks = shown.split(separator: "\n").map(String.init)
            #expect(blocks.allSatisfy { $0.count <= columns }, "\(shown)")
            #expect(blocks.filter { $0.hasPrefix("── trial ") }.count == 12, "\(shown)")
            // The failure is under its name, wrapped rather than cut on a narrow terminal.
            #expect(blocks.contains { $0.hasPrefix("error ") }, "\(shown)")
            #expect(blocks.contains { $0.contains("ValueError") }, "\(shown)")
            #expect(blocks.contains { $0.hasPrefix("max_num_batched_tokens") }, "\(shown)")
        }
    }

    /// Into a pipe or a file, the table is whole: every cell, the failure in its column; jsonl is one trial a line.
    @Test func aPipeGetsTheWholeTableAndJSONLinesOneTrialALine() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await studyWithLongNames(in: directory)
        let piped = try await autotune(["trials", "wide"], in: directory)
        let header = try #require(piped.stdout.split(separator: "\n").first)
        #expect(header.contains("max_num_batched_tokens") && header.hasSuffix("error"))
        #expect(piped.stdout.contains("Enable chunked prefill or raise max_num_batched_tokens."))
        let lines = try await autotune(["trials", "wide", "--format", "jsonl"], in: directory).stdout
            .split(separator: "\n")
        #expect(lines.count == 12)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["number"] is Int, "\(line)")
        }
    }

    /// Help paragraphs are wrapped by ArgumentParser at the terminal's width, not broken where the source
    /// line ended: on 250 columns no paragraph line stops short with the sentence going on below it.
    @Test func helpTextsWrapAtTheTerminalNotInTheMiddleOfASentence() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let commands = [
            [], ["run"], ["resume"], ["worker"], ["status"], ["best"], ["trials"], ["delete"], ["report"],
            ["dashboard"], ["validate"], ["gpus"], ["speedup"], ["simulate"],
        ]
        for command in commands {
            let help = try await autotune(command + ["--help"], in: directory, environment: ["COLUMNS": "250"])
            let lines = help.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            for (index, line) in lines.enumerated().dropLast() {
                let next = lines[index + 1]
                let indent = line.prefix { $0 == " " }.count
                guard line.count < 150, indent == next.prefix(while: { $0 == " " }).count,
                    let first = next.dropFirst(indent).first, first.isLowercase,
                    line.last?.isLetter == true
                        || line.last == ";" || line.last == ","
                else { continue }
                Issue.record("autotune \(command.joined(separator: " ")) --help breaks a sentence:\n\(line)\n\(next)")
            }
        }
    }

    /// `report --format md`: the summary a pull request or a ticket takes, to standard output or a file.
    @Test func aMarkdownReportSummarisesTheStudyForATicket() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await studyWithLongNames(in: directory)
        let run = try await autotune(["report", "wide", "--format", "md"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        let text = run.stdout
        #expect(text.hasPrefix("# Study `wide`\n"))
        #expect(text.contains("12 trials (8 completed, 4 failed)"), "\(text)")
        #expect(text.contains("## Recommendation\n\nTrial "), "\(text)")
        #expect(text.contains("| `max_num_batched_tokens` | 4096 |"), "\(text)")
        #expect(text.contains("```sh\n/bin/sh -c "), "\(text)")
        #expect(text.contains("## Top 5"), "\(text)")
        let failures = text.split(separator: "\n").filter { $0.hasPrefix("| run | ") }
        #expect(failures.count == 1 && failures.first?.hasSuffix("| 4 |") == true, "\(text)")
        let written = try await autotune(["report", "wide", "--format", "md", "-o", "wide.md"], in: directory)
        #expect(written.status == 0)
        #expect(try String(contentsOf: directory.appendingPathComponent("wide.md"), encoding: .utf8) == text)
    }

    /// `compare`: two runs of one task file side by side (parallel 1 and 3), each with its best, gain, how soon
    /// it got there, and the best configurations by parameter; a study of another objective is refused.
    @Test func compareShowsStudiesOfOneObjectiveSideBySide() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
        name: cmp
        parameters:
          a: {type: int, min: 1, max: 5}
          b: [x, y]
        baseline: {a: 1, b: x}
        strategy: grid
        objective: {maximize: score}
        experiment:
          command: [/bin/sh, -c, 'echo "{{\\"score\\": {a}}}"', x, '{b}']
        """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
        for (name, parallel) in [("one", "1"), ("three", "3")] {
            let run = try await autotune(
                ["run", "task.yaml", "--study", name, "--parallel", parallel, "--quiet"], in: directory)
            #expect(run.status == 0, "\(run.stderr)")
        }
        let shown = try await autotune(["compare", "one", "three"], in: directory)
        #expect(shown.status == 0, "\(shown.stderr)")
        let lines = shown.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "Comparing 2 studies: maximize score", "\(shown.stdout)")
        #expect(
            lines.contains {
                $0.hasPrefix("one ") && $0.contains("10 (10 completed, 0 failed)") && $0.contains("+400.0%")
            }, "\(shown.stdout)")
        #expect(lines.contains { $0.hasPrefix("three ") && $0.contains(" 3 ") }, "\(shown.stdout)")
        #expect(
            lines.contains { $0.split(separator: " ").map(String.init) == ["a", "5", "5"] }, "\(shown.stdout)")
        let json = try await autotune(["compare", "one", "three", "--format", "json"], in: directory)
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(entries.map { $0["study"] as? String } == ["one", "three"])
        #expect(entries.allSatisfy { ($0["best"] as? [String: Any])?["score"] as? Double == 5 })
        // Another objective: refused, naming both.
        try String(contentsOf: directory.appendingPathComponent("task.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "maximize: score", with: "minimize: score")
            .write(to: directory.appendingPathComponent("min.yaml"), atomically: true, encoding: .utf8)
        _ = try await autotune(["run", "min.yaml", "--study", "lowest", "--quiet"], in: directory)
        let refused = try await autotune(["compare", "one", "lowest"], in: directory)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("'lowest' has another objective than 'one'"), "\(refused.stderr)")
    }
}
