import ArgumentParser
import Autotune
import AutotuneRunner
import AutotuneServing
import AutotuneStore
import AutotuneStorePostgres
import AutotuneTask
import Foundation

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

    /// Where trial directories go by default: beside a SQLite file, else in the current directory.
    var trialsRoot: URL {
        isPostgres
            ? URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
            : URL(fileURLWithPath: path).deletingLastPathComponent()
    }

    func open() async throws -> any StudyStore & ResourceLedger {
        if isPostgres {
            do {
                return try await PostgresStudyStore(url: given)
            } catch {
                throw CLIError(.runtime, "\(error)")
            }
        }
        do {
            return try SQLiteStudyStore(path: path)
        } catch {
            throw CLIError(.runtime, "cannot open the database \(path): \(error)")
        }
    }

    /// Opens the store and loads the study called `name`, failing with exit code 3 when there is none.
    func study(_ name: String) async throws -> (any StudyStore & ResourceLedger, StoredStudy) {
        let store = try await open()
        guard let study = try await store.study(named: name) else {
            let names = try await store.studies().map(\.definition.name)
            let known = names.isEmpty ? "the database has no study" : "studies: " + names.joined(separator: ", ")
            throw CLIError(.notFound, "no study named '\(name)' in \(displayPath) (\(known))")
        }
        return (store, study)
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

/// The experiment a study runs: commands come from the runner module, servers from the serving module.
func makeExperiment(for definition: StudyDefinition, workingDirectory: URL, options: LoopOptions? = nil) throws
    -> any Experiment
{
    let runner: any ProgramRunner =
        if let options, options.slurm {
            SlurmRunner(
                settings: SlurmRunner.Settings(partition: options.slurmPartition, extraArguments: options.slurmArg))
        } else {
            LocalProgramRunner()
        }
    switch definition.experiment {
    case .command(let spec):
        return CommandExperiment(spec: spec, defaultWorkingDirectory: workingDirectory, runner: runner)
    case .serving(let spec):
        return ServingExperiment(
            spec: spec,
            defaultWorkingDirectory: workingDirectory,
            extraPlaceholders: ["autotune": executablePath],
            runner: runner
        )
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
func loadTask(_ path: String) throws -> (definition: StudyDefinition, source: String) {
    let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath)
    let loaded: (StudyDefinition, String)
    do {
        loaded = try TaskFile.load(path: path, workingDirectory: cwd)
    } catch {
        throw CLIError(.invalidTask, "\(error)")
    }
    do {
        _ = try StrategyRegistry.standard.make(loaded.0.strategy.name, context: loaded.0.strategyContext)
    } catch {
        throw CLIError(.invalidTask, "\(path): strategy: \(error)")
    }
    return loaded
}
