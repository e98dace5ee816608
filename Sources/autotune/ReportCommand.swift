import ArgumentParser
import Autotune
import AutotuneReport
import Foundation

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a study as one self-contained HTML page that opens offline.",
        discussion: """
            History, parallel coordinates, the Pareto front with several objectives, parameter importance, a slice \\
            per parameter, failures by stage and cause, the best configuration with its command, a timeline of \\
            trials per GPU or slot, and every trial in a sortable, filterable table. Charts are SVG drawn here: no \\
            script library and no network.
            """
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(name: [.short, .customLong("output")], help: "The HTML file to write (default: STUDY.html).")
    var output: String?

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            try await store.withStudy(study) { database, stored in
                let trials = try await database.trials(ofStudy: stored.id)
                let input = ReportInput(
                    study: stored, trials: trials,
                    commands: reportCommands(study: stored, trials: trials, trialsDirectory: store.trialsDirectory))
                let path = output ?? "\(study).html"
                do {
                    try Data(StudyReport.html(input).utf8).write(to: URL(fileURLWithPath: path))
                } catch {
                    throw CLIError(.runtime, "cannot write \(path): \(error.localizedDescription)")
                }
                print("Wrote \(path) (\(trials.count) trials); open it in any browser, offline")
            }
        }
    }
}
