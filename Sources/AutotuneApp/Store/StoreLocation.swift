public import Autotune
import AutotuneStore
public import Foundation
public import Logging

#if PostgreSQL
    import AutotuneStorePostgres
#endif

/// Where a study database lives, as a person gave it: a SQLite file, or a PostgreSQL server that workers share.
///
/// It resolves the path, says where trial directories go, opens the store for the length of a body, and writes
/// the command a person can type to reach the same database again.
public struct StoreLocation: Sendable, Hashable {
    /// How a SQLite file is opened.
    public enum Access: Sendable, Hashable {
        /// Created (with its folders) when missing, and migrated: for starting studies.
        case create
        /// It must exist and hold a database; migrated: for resuming studies.
        case existing
        /// It must exist and is only read: for the commands that show things.
        case readOnly
    }

    /// What was given: `--db`, else `$AUTOTUNE_DB`, else `autotune.sqlite`.
    public let given: String
    /// Whether `given` came from a flag or the environment rather than the default.
    private let isDefault: Bool

    /// The database `flag` names, else `$AUTOTUNE_DB`, else `./autotune.sqlite`.
    public init(flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) {
        given = flag ?? environment["AUTOTUNE_DB"] ?? "autotune.sqlite"
        isDefault = flag == nil && environment["AUTOTUNE_DB"] == nil
    }

    /// Whether the database is a PostgreSQL server.
    public var isPostgres: Bool { given.hasPrefix("postgres://") || given.hasPrefix("postgresql://") }

    /// The SQLite file's absolute path, or the PostgreSQL URL as given.
    public var path: String {
        isPostgres ? given : URL(fileURLWithPath: given).standardizedFileURL.path
    }

    /// The path or URL for messages: a PostgreSQL URL's password is left out.
    public var displayPath: String {
        guard isPostgres, var components = URLComponents(string: given), components.password != nil else {
            return path
        }
        components.password = nil
        return components.string ?? path
    }

    /// `autotune SUBCOMMAND STUDY` as a person can type it to reach this database: with `--db` unless it is the
    /// default one (a password in a URL left out), every argument quoted for the shell.
    public func command(_ subcommand: String, _ study: String) -> String {
        var words = ["autotune", subcommand, study]
        if !isDefault || isPostgres { words += ["--db", displayPath] }
        return ShellWords.join(words)
    }

    /// Where trial directories go by default: `autotune-trials/` beside `autotune.sqlite` (and in the current
    /// directory for PostgreSQL); `NAME-trials/` beside any other file `NAME.sqlite` (or `NAME.db`, `NAME`), so
    /// two databases in one folder never share trial directories.
    public var trialsDirectory: URL {
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

    /// Whether there is something to read: a PostgreSQL server is assumed there, a file must exist.
    public var exists: Bool { isPostgres || FileManager.default.fileExists(atPath: path) }

    /// Opens the store for the length of `body`: a PostgreSQL store's connections close when it returns; a
    /// SQLite file is opened as `access` says.
    ///
    /// A file that is missing (or empty: a run stopped before writing a study) when it must exist is
    /// ``AutotuneError/Code/studyNotFound``; one that cannot be opened, read or written keeps its code
    /// (`unavailable`, `corrupt`).
    public func withStore<Result: Sendable>(
        _ access: Access = .create,
        logger: Logger = Logger(label: "autotune"),
        _ body: (any StudyStore & ResourceLedger) async throws -> Result
    ) async throws -> Result {
        if isPostgres {
            #if PostgreSQL
                return try await PostgresStudyStore.withStore(url: given, logger: logger) { try await body($0) }
            #else
                throw AutotuneError(
                    .invalidArgument,
                    "this autotune was built without PostgreSQL (swift build --disable-default-traits); build it with the default traits (swift build) to use \(displayPath)"
                )
            #endif
        }
        let mode: SQLiteStudyStore.Mode =
            switch access {
            case .create: .create
            case .existing: .existing
            case .readOnly: .readOnly
            }
        let store: SQLiteStudyStore
        do {
            store = try SQLiteStudyStore(path: path, mode: mode)
        } catch let error as AutotuneError {
            throw error
        } catch {
            throw AutotuneError(.unavailable, "cannot open the database \(path): \(error)", underlying: error)
        }
        defer { store.close() }
        return try await body(store)
    }

    /// Opens the store and loads the study called `name` for the length of `body`.
    public func withStudy<Result: Sendable>(
        _ name: String,
        _ access: Access = .readOnly,
        logger: Logger = Logger(label: "autotune"),
        _ body: (any StudyStore & ResourceLedger, StoredStudy) async throws -> Result
    ) async throws -> Result {
        try await withStore(access, logger: logger) { store in
            try await body(store, try await study(name, in: store))
        }
    }

    /// The study called `name` in `store`; ``AutotuneError/Code/studyNotFound`` naming the studies there when
    /// there is none.
    public func study(_ name: String, in store: any StudyStore) async throws -> StoredStudy {
        guard let study = try await store.study(named: name) else {
            let names = try await store.studies().map(\.definition.name)
            let known = names.isEmpty ? "the database has no study" : "studies: " + names.joined(separator: ", ")
            throw AutotuneError(.studyNotFound, "no study named '\(name)' in \(displayPath) (\(known))")
        }
        return study
    }
}
