import ArgumentParser
import Autotune
import AutotuneRunner
import AutotuneServing
import AutotuneStore
import AutotuneStorePostgres
import AutotuneTask
import Foundation
import Logging

/// Where the study database lives: a SQLite file, or a PostgreSQL server that workers share.
struct StoreOptions: ParsableArguments {
    @Option(
        name: .long,
        help:
            "The study database: a SQLite file, or postgres://user@host/db for workers on several machines. Default: $AUTOTUNE_DB or ./autotune.sqlite."
    )
    var db: String?

    private var given: String { db ?? ProcessInfo.processInfo.environment["AUTOTUNE_DB"] ?? "autotune.sqlite" }

    /// Whether the database is a PostgreSQL server.
    var isPostgres: Bool { given.hasPrefix("postgres://") || given.hasPrefix("postgresql://") }

    /// The SQLite file's absolute path, or the PostgreSQL URL as given.
    var path: String {
        isPostgres ? given : URL(fileURLWithPath: given).standardizedFileURL.path
    }

    /// The path or URL for messages: a PostgreSQL URL's password is left out.
    var displayPath: String {
        guard isPostgres, var components = URLComponents(string: given), components.password != nil else {
            return path
        }
        components.password = nil
        return components.string ?? path
    }

    /// `autotune SUBCOMMAND STUDY` as a person can type it to reach this database: with `--db` unless it is the
    /// default one (a password in a URL left out), every argument quoted for the shell.
    func command(_ subcommand: String, _ study: String) -> String {
        var words = ["autotune", subcommand, study]
        let defaultPath = URL(fileURLWithPath: "autotune.sqlite").standardizedFileURL.path
        if isPostgres || path != defaultPath || ProcessInfo.processInfo.environment["AUTOTUNE_DB"] != nil {
            words += ["--db", displayPath]
        }
        return words.map(shellQuoted).joined(separator: " ")
    }

    /// Where trial directories go by default: `autotune-trials/` beside `autotune.sqlite` (and in the current
    /// directory for PostgreSQL); `NAME-trials/` beside any other file `NAME.sqlite` (or `NAME.db`, `NAME`), so
    /// two databases in one folder never share trial directories.
    var trialsDirectory: URL {
        if isPostgres {
            return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(
                "autotune-trials")
        }
        let file = URL(fileURLWithPath: path)
        var stem = file.lastPathComponent
        for suffix in [".sqlite3", ".sqlite", ".db"] where stem.hasSuffix(suffix) && stem.count > suffix.count {
            stem.removeLast(suffix.count)
            break
        }
        return file.deletingLastPathComponent().appendingPathComponent("\(stem)-trials")
    }

    /// Opens the store for the length of `body`: a PostgreSQL store's connections close when it returns. A
    /// SQLite file is opened as `mode` says: created by `run`, required by `resume`, only read by the commands
    /// that show things.
    func withStore<Result: Sendable>(
        _ mode: SQLiteStudyStore.Mode = .create,
        _ body: (any StudyStore & ResourceLedger) async throws -> Result
    ) async throws -> Result {
        if isPostgres {
            do {
                return try await PostgresStudyStore.withStore(url: given, logger: cliLogger()) { try await body($0) }
            } catch let error as StoreError where error.code == .unavailable {
                throw CLIError(.runtime, error.description)
            }
        }
        let store: SQLiteStudyStore
        do {
            store = try SQLiteStudyStore(path: path, mode: mode)
        } catch let error as StoreError {
            throw CLIError(error.code == .unavailable && mode != .create ? .notFound : .runtime, error.description)
        } catch {
            throw CLIError(.runtime, "cannot open the database \(path): \(error)")
        }
        return try await body(store)
    }

    /// Opens the store and loads the study called `name` for the length of `body`, failing with exit code 3
    /// when there is none.
    func withStudy<Result: Sendable>(
        _ name: String,
        _ mode: SQLiteStudyStore.Mode = .readOnly,
        _ body: (any StudyStore & ResourceLedger, StoredStudy) async throws -> Result
    ) async throws -> Result {
        try await withStore(mode) { store in
            try await body(store, try await study(name, in: store))
        }
    }

    /// The study called `name` in `store`, failing with exit code 3 when there is none.
    func study(_ name: String, in store: any StudyStore) async throws -> StoredStudy {
        guard let study = try await store.study(named: name) else {
            let names = try await store.studies().map(\.definition.name)
            let known = names.isEmpty ? "the database has no study" : "studies: " + names.joined(separator: ", ")
            throw CLIError(.notFound, "no study named '\(name)' in \(displayPath) (\(known))")
        }
        return study
    }
}

/// A failure with the exit code scripts can test.
struct CLIError: Error, CustomStringConvertible {
    enum Code: Int32 {
        case runtime = 1
        case invalidTask = 2
        case notFound = 3
        case noCompletedTrial = 4
    }

    let code: Code
    let message: String

    init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    var description: String { message }
}

/// Prints `message` to standard error and exits with the error's code.
func exit(with error: CLIError) -> ExitCode {
    FileHandle.standardError.write(Data(("autotune: " + error.message + "\n").utf8))
    return ExitCode(error.code.rawValue)
}

/// Runs a subcommand body, turning known errors into messages and exit codes.
func reportingErrors(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CLIError {
        throw exit(with: error)
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch {
        throw exit(with: CLIError(.runtime, "\(error)"))
    }
}

/// The experiment a study runs, its programs started here or, with `--slurm`, as Slurm jobs.
func makeExperiment(for definition: StudyDefinition, workingDirectory: URL, options: LoopOptions? = nil)
    -> any Experiment
{
    let runner: any ProgramRunner =
        if let options, options.slurm {
            SlurmRunner(
                settings: SlurmRunner.Settings(partition: options.slurmPartition, extraArguments: options.slurmArg))
        } else {
            LocalProgramRunner()
        }
    return definition.experiment.makeExperiment(
        workingDirectory: workingDirectory, runner: runner, extraPlaceholders: ["autotune": executablePath])
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

/// This executable's absolute path, for the `{autotune}` placeholder (`autotune simulate` in task files).
let executablePath: String = {
    let link = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    if link != "/proc/self/exe" { return link }
    return URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
}()

/// Reads and validates a task file, strategy options included, relative to the current directory; an invalid
/// file is exit code 2 with its file:line:field message.
///
/// With `checkPrograms`, a command whose program cannot be run here is refused too; not for Slurm, whose nodes
/// have programs of their own.
func loadTask(_ path: String, checkPrograms: Bool = true) throws -> (definition: StudyDefinition, source: String) {
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    do {
        let registry = StrategyRegistry.standard
        return try TaskFile.load(
            path: path, workingDirectory: cwd,
            strategies: { spec, context in try registry.check(spec.name, context: context) },
            programs: checkPrograms
                ? { program in
                    guard ProcessLauncher.executable(program) == nil else { return nil }
                    return program.contains("/")
                        ? "\(program) does not exist or is not executable"
                        : "'\(program)' is not found on PATH (install it, or give its full path)"
                } : nil)
    } catch {
        throw CLIError(.invalidTask, "\(error)")
    }
}
