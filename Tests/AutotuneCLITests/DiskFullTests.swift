import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A small file system of its own (tmpfs), for tests of a full disk: mounting needs root, which CI has.
enum SmallDisk {
    static let inCI = ProcessInfo.processInfo.environment["CI"] == "true"
    static var available: Bool { geteuid() == 0 }

    /// Runs `body` with a fresh tmpfs of `kilobytes` mounted at a new directory, unmounted afterwards.
    static func with<T>(kilobytes: Int, _ body: (URL) async throws -> T) async throws -> T {
        let point = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-disk-\(UUID())")
        try FileManager.default.createDirectory(at: point, withIntermediateDirectories: true)
        let mount = Process()
        mount.executableURL = URL(fileURLWithPath: "/bin/mount")
        mount.arguments = ["-t", "tmpfs", "-o", "size=\(kilobytes)k", "tmpfs", point.path]
        try mount.run()
        mount.waitUntilExit()
        try #require(mount.terminationStatus == 0, "cannot mount a tmpfs at \(point.path)")
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = ["-l", point.path]
            try? unmount.run()
            unmount.waitUntilExit()
            try? FileManager.default.removeItem(at: point)
        }
        return try await body(point)
    }
}

@Suite(.serialized, .timeLimit(.minutes(5))) struct DiskFullTests {
    /// Trials whose directory's disk fills up: the trial that failed for it goes back to pending, the study stops
    /// with a message naming the full disk, and nothing recorded before is lost; once there is room, `resume`
    /// finishes the study.
    @Test(.enabled(if: SmallDisk.available || SmallDisk.inCI, "mounting a small tmpfs needs root"))
    func aFullTrialsDiskStopsTheStudyAndSaysSo() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await SmallDisk.with(kilobytes: 320) { disk in
            try """
            name: full
            parallel: 1
            parameters: {n: {type: int, min: 1, max: 8}}
            objective: {maximize: score}
            strategy: {name: grid, order: declared}
            experiment:
              command: [/bin/sh, -c, 'dd if=/dev/zero of={trial_dir}/blob bs=1k count=100 2>/dev/null || exit 1; echo "{{\\"score\\": {n}}}"']
            """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
            let run = try await autotune(
                ["run", "task.yaml", "--trials-dir", disk.path], in: directory)
            #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
            #expect(run.stderr.contains("the disk holding \(disk.path) is full"), "\(run.stderr)")
            #expect(run.stderr.contains("free some space and `autotune resume`"), "\(run.stderr)")
            let listed = try await autotune(["trials", "full", "--format", "json"], in: directory)
            let trials = try #require(
                try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            #expect(trials.filter { $0["state"] as? String == "completed" }.count >= 2, "recorded before: kept")
            #expect(!trials.contains { $0["state"] as? String == "failed" }, "no trial failed for the full disk")
            #expect(trials.contains { $0["state"] as? String == "pending" }, "the one it stopped went back")
        }
    }

    /// A database whose disk fills up: the study stops with exit 1, naming the database and the full disk (not
    /// SQLite's number), and what was recorded before can still be read.
    @Test(.enabled(if: SmallDisk.available || SmallDisk.inCI, "mounting a small tmpfs needs root"))
    func aFullDatabaseDiskStopsTheStudyAndSaysSo() async throws {
        let directory = try scratch()
        defer { try? FileManager.default.removeItem(at: directory) }
        try await SmallDisk.with(kilobytes: 768) { disk in
            // Each trial reports 300 metrics, so the database grows by a few kilobytes a trial.
            let metrics = (0..<300).map { "\\\"m\($0)\\\": {n}.\($0)" }.joined(separator: ", ")
            try """
            name: fat
            parallel: 2
            parameters: {n: {type: int, min: 1, max: 400}}
            objective: {maximize: m1}
            strategy: {name: grid, order: declared}
            experiment:
              command: [/bin/sh, -c, 'echo "{{\(metrics)}}"']
            """.write(to: directory.appendingPathComponent("task.yaml"), atomically: true, encoding: .utf8)
            let database = disk.appendingPathComponent("studies.sqlite").path
            let trialsDirectory = directory.appendingPathComponent("trials").path
            let run = try await autotune(
                ["run", "task.yaml", "--db", database, "--trials-dir", trialsDirectory, "--quiet"], in: directory)
            #expect(run.status == 1, "\(run.stdout)\n\(run.stderr)")
            #expect(run.stderr.contains("the disk holding the database \(database) is full"), "\(run.stderr)")
            #expect(!run.stderr.contains("SQLite error 13"), "\(run.stderr)")
            let listed = try await autotune(["trials", "fat", "--db", database, "--format", "json"], in: directory)
            #expect(listed.status == 0, "\(listed.stderr)")
            let trials = try #require(
                try JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]])
            #expect(trials.contains { $0["state"] as? String == "completed" }, "what was recorded before is readable")
        }
    }
}
