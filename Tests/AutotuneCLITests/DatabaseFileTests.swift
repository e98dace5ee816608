import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The database file as a person handles it: copied on its own, mistaken for another program's, read-only, a
/// directory; and the exit code each gives, from the one table in docs/cli.md.
@Suite(.serialized, .timeLimit(.minutes(5))) struct DatabaseFileTests {
    private let grid = """
        name: g
        parameters: {level: {type: int, min: 1, max: 4}}
        objective: {maximize: score}
        strategy: grid
        experiment:
          command: [/bin/sh, -c, 'echo "{{\\"score\\": {level}}}"', x, '{level}']
        """

    /// After a run the write-ahead log is folded back into the file, so the `.sqlite` file alone, copied
    /// elsewhere, holds the study.
    @Test func theDatabaseFileAloneHoldsTheStudyAfterARun() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try grid.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        #expect(try await autotune(["run", "t.yaml", "--quiet"], in: directory).status == 0)
        let wal = directory.appendingPathComponent("autotune.sqlite-wal").path
        let walSize = (try? FileManager.default.attributesOfItem(atPath: wal)[.size] as? Int) ?? 0
        #expect(walSize == 0, "the log was left beside the database: \(walSize) bytes")
        let elsewhere = try scratch()
        defer { try? FileManager.default.removeItem(at: elsewhere) }
        try FileManager.default.copyItem(
            at: directory.appendingPathComponent("autotune.sqlite"),
            to: elsewhere.appendingPathComponent("copy.sqlite"))
        let status = try await autotune(["status", "--db", "copy.sqlite"], in: elsewhere)
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("g ") && status.stdout.contains("completed"), "\(status.stdout)")
    }

    /// Another program's SQLite file is refused, naming what it holds, and nothing is added to it.
    @Test func aFileThatIsNotAStudyDatabaseIsRefusedWithWhatItHolds() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        let other = directory.appendingPathComponent("other.sqlite").path
        let python = Process()
        python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        python.arguments = [
            "python3", "-c",
            "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('create table users (id int)'); c.commit()",
            other,
        ]
        try python.run()
        python.waitUntilExit()
        try grid.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        for arguments in [["status"], ["run", "t.yaml"], ["resume", "g"]] {
            let run = try await autotune(arguments + ["--db", other], in: directory)
            #expect(run.status == 1, "\(arguments): \(run.stderr)")
            #expect(run.stderr.contains("not an Autotune one (its tables: users)"), "\(arguments): \(run.stderr)")
        }
        let tables = Process()
        tables.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        tables.arguments = [
            "python3", "-c",
            "import sqlite3,sys; print([r[0] for r in sqlite3.connect(sys.argv[1]).execute('select name from sqlite_master')])",
            other,
        ]
        let pipe = Pipe()
        tables.standardOutput = pipe
        try tables.run()
        tables.waitUntilExit()
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) == "['users']\n")
    }

    /// A database that cannot be written, or is a directory, is a failure (1), not an unknown study (3), for
    /// every command.
    @Test func aDatabaseThatCannotBeOpenedIsAFailureNotAnUnknownStudy() async throws {
        let directory = try scratch()
        defer {
            chmod(directory.path, 0o755)
            try? FileManager.default.removeItem(at: directory)
        }
        try grid.write(to: directory.appendingPathComponent("t.yaml"), atomically: true, encoding: .utf8)
        let folder = directory.appendingPathComponent("folder.sqlite")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for arguments in [["run", "t.yaml"], ["resume", "g"], ["status"], ["trials", "g"]] {
            let run = try await autotune(arguments + ["--db", folder.path], in: directory)
            #expect(run.status == 1, "\(arguments): \(run.stderr)")
        }
        // Read-only, as another user, so root's right to write everywhere does not hide it.
        #expect(try await autotune(["run", "t.yaml", "--quiet"], in: directory).status == 0)
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") else { return }
        chmod(directory.appendingPathComponent("autotune.sqlite").path, 0o444)
        chmod(directory.path, 0o555)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        process.arguments = [
            "-u", "nobody", "--", executable.path, "resume", "g", "--db",
            directory.appendingPathComponent("autotune.sqlite").path,
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 1, "\(output)")
        #expect(output.contains("cannot open") && output.contains("readonly"), "\(output)")
    }
}
