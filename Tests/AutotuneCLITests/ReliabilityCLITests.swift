import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What the CLI does with databases that are missing, shared, read-only or taken away, and with input meant to
/// escape: each through the real binary.
@Suite(.serialized, .timeLimit(.minutes(5))) struct ReliabilityCLITests {
    private func directory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-rcli-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    private func write(_ text: String, to name: String, in directory: URL) throws {
        try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
    }

    private let grid = """
        parameters: {level: {type: int, min: 1, max: 4}}
        objective: {maximize: score}
        strategy: grid
        experiment:
          command: [/bin/sh, -c, 'echo "{{\\"score\\": {level}}}"', x, '{level}']
        """

    @Test func readingCommandsNeverCreateADatabase() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for arguments in [["status"], ["resume", "x"], ["best", "x"], ["trials", "x"]] {
            let run = try await autotune(arguments + ["--db", "nested/none.sqlite"], in: directory)
            #expect(run.status == 3, "\(arguments): \(run.stderr)")
            #expect(run.stderr.contains("there is no database at"), "\(arguments): \(run.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("nested").path))
    }

    /// SQLite creates the file before writing to it: a run killed in that moment leaves 0 bytes. That is a
    /// database with no study (exit 3, as for a missing study), and `run` then starts in it.
    @Test func anEmptyDatabaseFileHoldsNoStudyAndARunStartsInIt() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("name: fresh\n" + grid, to: "t.yaml", in: directory)
        #expect(
            FileManager.default.createFile(atPath: directory.appendingPathComponent("s.sqlite").path, contents: nil))
        for arguments in [["resume", "fresh"], ["trials", "fresh"], ["status"]] {
            let run = try await autotune(arguments + ["--db", "s.sqlite"], in: directory)
            #expect(run.status == 3, "\(arguments): \(run.stderr)")
            #expect(run.stderr.contains("s.sqlite is empty (0 bytes): it holds no study yet"), "\(run.stderr)")
        }
        let run = try await autotune(["run", "t.yaml", "--db", "s.sqlite", "--quiet"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try await autotune(["best", "fresh", "--db", "s.sqlite"], in: directory).status == 0)
    }

    @Test func twoDatabasesInOneFolderKeepTheirOwnTrialDirectories() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write("name: same\n" + grid, to: "t.yaml", in: directory)
        for database in ["a.sqlite", "b.db"] {
            let run = try await autotune(["run", "t.yaml", "--db", database, "--quiet"], in: directory)
            #expect(run.status == 0, "\(run.stderr)")
        }
        for trials in ["a-trials", "b-trials"] {
            #expect(
                FileManager.default.fileExists(
                    atPath: directory.appendingPathComponent("\(trials)/same/0/stdout.log").path), "\(trials)")
        }
    }

    @Test func aReadOnlyDatabaseCanStillBeRead() async throws {
        let directory = try directory()
        defer {
            chmod(directory.path, 0o755)
            try? FileManager.default.removeItem(at: directory)
        }
        try write("name: ro\n" + grid, to: "t.yaml", in: directory)
        #expect(try await autotune(["run", "t.yaml", "--quiet"], in: directory).status == 0)
        chmod(directory.appendingPathComponent("autotune.sqlite").path, 0o444)
        chmod(directory.path, 0o555)
        // As another user, so even root's right to write everywhere does not hide a write.
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        let binary = executable.path
        process.arguments = [
            "-u", "nobody", "--", binary, "status", "--db", directory.appendingPathComponent("autotune.sqlite").path,
        ]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        guard getuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") else { return }
        try process.run()
        process.waitUntilExit()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(output) \(directory.path)")
        #expect(output.contains("ro ") && output.contains("completed"), "\(output)")
    }

    @Test func aStudyNameThatWouldEscapeItsDirectoryIsRefused() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(grid, to: "t.yaml", in: directory)
        for name in ["../../escape", String(repeating: "n", count: 10_000)] {
            let run = try await autotune(["run", "t.yaml", "--study", name], in: directory)
            #expect(run.status == 64, "\(run.stderr)")
            #expect(run.stderr.contains("--study"))
        }
        #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("autotune.sqlite").path))
    }

    @Test func validateDoesNotStartAPlugin() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = directory.appendingPathComponent("started")
        try write("#!/bin/sh\ntouch \(marker.path)\n", to: "plugin.sh", in: directory)
        chmod(directory.appendingPathComponent("plugin.sh").path, 0o755)
        try write(
            grid.replacingOccurrences(
                of: "strategy: grid", with: "strategy: {command: [./plugin.sh]}\nbudget: {max_trials: 2}"),
            to: "t.yaml", in: directory)
        let run = try await autotune(["validate", "t.yaml"], in: directory)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: marker.path))
        try write(
            grid.replacingOccurrences(
                of: "strategy: grid", with: "strategy: {command: [python3, missing.py]}\nbudget: {max_trials: 2}"),
            to: "u.yaml", in: directory)
        let missing = try await autotune(["validate", "u.yaml"], in: directory)
        #expect(missing.status == 2)
        #expect(
            missing.stderr.contains("u.yaml:3:") && missing.stderr.contains("missing.py does not exist"),
            "\(missing.stderr)")
    }

    /// The database's folder removed mid-run: the study stops with the reason and exit 1, not "completed".
    @Test func aDatabaseRemovedWhileTheStudyRunsStopsItWithAnError() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        try write(
            "name: gone\nparallel: 2\n"
                + grid.replacingOccurrences(of: "max: 4", with: "max: 40").replacingOccurrences(
                    of: "'echo", with: "'sleep 0.2; echo"), to: "t.yaml", in: directory)
        let run = try await autotune(["run", "t.yaml", "--db", "data/s.sqlite", "--quiet"], in: directory) { _ in
            while !FileManager.default.fileExists(atPath: data.appendingPathComponent("s-trials/gone/2").path) {
                try await Task.sleep(for: .milliseconds(20))
            }
            // Moved away first, in one step: removing the folder in place races the trials still creating
            // directories in it, and a removal that meets a directory made under it fails (EPERM).
            try FileManager.default.moveItem(at: data, to: directory.appendingPathComponent("removed"))
            try? FileManager.default.removeItem(at: directory.appendingPathComponent("removed"))
        }
        #expect(run.status == 1, "stdout: \(run.stdout) stderr: \(run.stderr)")
        #expect(run.stderr.contains("was removed or replaced"), "\(run.stderr)")
        #expect(!run.stdout.contains("completed:"))
    }

    /// Processes opening one new database at once take turns on its schema.
    @Test func processesCreatingOneDatabaseAtOnceDoNotRace() async throws {
        let directory = try directory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try write(grid, to: "t.yaml", in: directory)
        for attempt in 0..<5 {
            let database = "race-\(attempt).sqlite"
            let runs = try await withThrowingTaskGroup(of: Run.self) { group in
                for study in 0..<4 {
                    group.addTask {
                        try await autotune(
                            ["run", "t.yaml", "--db", database, "--study", "s\(study)", "--quiet"], in: directory)
                    }
                }
                var all: [Run] = []
                for try await run in group { all.append(run) }
                return all
            }
            for run in runs { #expect(run.status == 0, "\(run.stderr)") }
            // Every study is whole in the one file: four of them, each with its four trials completed.
            let status = try await autotune(["status", "--db", database], in: directory)
            for study in 0..<4 {
                let line = status.stdout.split(separator: "\n").first { $0.hasPrefix("s\(study) ") }
                #expect(line?.contains("completed") == true && line?.contains("4/") != true, "\(status.stdout)")
                let trials = try await autotune(
                    ["trials", "s\(study)", "--db", database, "--format", "json"], in: directory)
                let rows = try JSONSerialization.jsonObject(with: Data(trials.stdout.utf8)) as? [[String: Any]]
                #expect(rows?.count == 4 && rows?.allSatisfy { $0["state"] as? String == "completed" } == true)
            }
        }
    }
}
