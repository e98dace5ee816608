import ArgumentParser
import Autotune
import AutotuneApp
import AutotuneRunner
import Foundation
import Logging

/// `--db`: where the study database lives.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "The study database: a SQLite file, or postgres://user@host/db for workers on several machines. Default: $AUTOTUNE_DB or ./autotune.sqlite."
    )
    var db: String?

    /// The database named.
    var location: StoreLocation { StoreLocation(flag: db) }
}

/// The exit code of each category of failure (docs/cli.md has the table).
func exitCode(of category: AutotuneError.Category) -> Int32 {
    switch category {
    case .failure: 1
    case .invalidInput: 2
    case .unknownStudy: 3
    case .noResult: 4
    }
}

/// Runs a subcommand body, printing a failure's message and exiting with its category's code.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as AutotuneError {
        FileHandle.standardError.write(Data(("autotune: " + error.description + "\n").utf8))
        throw ExitCode(exitCode(of: error.code.category))
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        FileHandle.standardError.write(Data("autotune: \(error)\n".utf8))
        throw ExitCode(1)
    }
}

/// The CLI's logger: notices and worse (debug lines too when `verbose`) to standard error.
func cliLogger(verbose: Bool = false) -> Logger {
    _ = loggingToStandardError
    var logger = Logger(label: "autotune")
    logger.logLevel = verbose ? .debug : .notice
    return logger
}

/// Log lines go to standard error, keeping standard output for results, above any live bar; bootstrapped once
/// per process.
private let loggingToStandardError: Void = LoggingSystem.bootstrap { label in ScreenLogHandler(label: label) }

/// Log lines as a person reads them, `autotune: Took back a trial (trial.number=3, worker=…)`, written through
/// the terminal screen so they never land inside the live bar.
struct ScreenLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .notice
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let details =
            all.isEmpty
            ? "" : " (" + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ") + ")"
        let level = event.level >= .error ? "error: " : event.level <= .debug ? "debug: " : ""
        TerminalScreen.standardError.line("autotune: \(level)\(event.message)\(details)")
    }
}

/// Writes `text` and a newline to standard error.
func printError(_ text: String) {
    FileHandle.standardError.write(Data((text + "\n").utf8))
}
