import ArgumentParser
import Autotune
import AutotuneApp
import AutotuneReport
import Foundation

struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a study as one self-contained HTML page that opens offline, or as Markdown.",
        discussion: """
            History, parallel coordinates, the Pareto front with several objectives, parameter importance with \
            its uncertainty, a contour of the two most important parameters, the distribution of scores, a slice \
            per parameter; for a serving study, throughput against latency with the SLO, the recommended trial's \
            load levels and its requests' latency distributions beside the baseline's; failures by stage and \
            cause, the best configuration with its command, a timeline of trials per GPU or slot, and every trial \
            in a sortable, filterable table. A click on a trial highlights it in every chart and the table. Charts \
            are SVG drawn here: no script library and no network. --format md prints a Markdown summary instead (the recommendation with \
            its command and gain, the confirmation, the front or the top trials, the failures), for a pull request \
            or a ticket.
            """
    )

    @Argument(help: "The study's name.")
    var study: String

    @Option(
        name: [.short, .customLong("output")],
        help: "The file to write (default: STUDY.html; Markdown goes to standard output unless given).")
    var output: String?

    @Option(name: .long, help: "html or md.")
    var format: ReportFormat = .html

    enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
        case html, md
    }

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let location = store.location
            try await location.withStudy(study, logger: cliLogger()) { database, stored in
                let trials = try await database.trials(ofStudy: stored.id)
                let input = ReportInput(
                    study: stored, trials: trials, trialsDirectory: location.trialsDirectory,
                    result: await stored.result(trials: trials))
                if format == .md {
                    let text = StudyReport.markdown(input)
                    guard let output else {
                        print(text, terminator: "")
                        return
                    }
                    try write(text, to: output)
                    print("Wrote \(output) (\(trials.count) trials)")
                    return
                }
                let path = output ?? "\(study).html"
                try write(StudyReport.html(input), to: path)
                print("Wrote \(path) (\(trials.count) trials); open it in any browser, offline")
            }
        }
    }
}

struct DashboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve the database's studies as live web pages (read-only).",
        discussion: """
            The studies, each study's report (the views of 'autotune report'), updating within a second or two \
            while a study runs in another process, a page per trial with its configuration, its figures by load \
            level, timings, error, latency charts, its files and the tail of its logs, and /compare for the \
            studies ticked on the front page. It binds to 127.0.0.1 unless --host says otherwise, only reads the \
            database, and reads no file outside the studies' trial directories.
            """
    )

    @Option(name: .long, help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(name: .long, help: "The port to listen on; 0 lets the system choose a free one (the address is printed).")
    var port = 8765

    @OptionGroup var store: StoreOptions

    func run() async throws {
        try await reportingErrors {
            let location = store.location
            try await location.withStore(.readOnly, logger: cliLogger()) { database in
                // Printed once bound, so the address is one that answers (and names the port 0 was given).
                try await Dashboard.serve(
                    store: database, trialsDirectory: location.trialsDirectory, databaseName: location.displayPath,
                    host: host, port: port, logger: cliLogger()
                ) { bound in
                    printError("Dashboard of \(location.displayPath) at http://\(host):\(bound)/")
                }
            }
        }
    }
}

/// Writes `text` to `path`; a failure names the file.
func write(_ text: String, to path: String) throws {
    do {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    } catch {
        throw AutotuneError(.unavailable, "cannot write \(path): \(error.localizedDescription)", underlying: error)
    }
}
