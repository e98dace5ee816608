import Autotune
import AutotuneTesting
import Foundation
import GRDB
import Testing

@testable import AutotuneStore

/// A store that drops checkpoints and every trial's metrics: what the conformance suite must catch.
private struct ForgetfulStore: StudyStore, ResourceLedger {
    let wrapping: SQLiteStudyStore

    var location: String { wrapping.location }

    func createStudy(_ definition: StudyDefinition, taskSource: String?) async throws -> StoredStudy {
        // Bound first, then returned: `try await wrapping.createStudy(…)` as the whole body aborted under Swift 6.3
        // ("freed pointer was not the last allocation") once the definition grew a field.
        let study = try await wrapping.createStudy(definition, taskSource: taskSource)
        return study
    }
    // Every value bound before it is returned, for the same reason.
    func study(named name: String) async throws -> StoredStudy? {
        let study = try await wrapping.study(named: name)
        return study
    }
    func studies() async throws -> [StoredStudy] {
        let studies = try await wrapping.studies()
        return studies
    }
    func trials(ofStudy studyID: Int64) async throws -> [Trial] {
        let trials = try await wrapping.trials(ofStudy: studyID)
        return trials
    }
    func saveLaunched(_ trials: [Trial], studyID: Int64, checkpoint: Data?) async throws {
        try await wrapping.saveLaunched(trials, studyID: studyID, checkpoint: nil)
    }
    func saveFinished(_ trial: Trial, studyID: Int64, checkpoint: Data?, best: BestTrial?, elapsedSeconds: Double)
        async throws
    {
        var trial = trial
        trial.metrics = [:]
        try await wrapping.saveFinished(
            trial, studyID: studyID, checkpoint: checkpoint, best: best, elapsedSeconds: elapsedSeconds)
    }
    func saveRequeued(_ trials: [Trial], studyID: Int64) async throws {
        try await wrapping.saveRequeued(trials, studyID: studyID)
    }
    func saveHeartbeat(studyID: Int64, elapsedSeconds: Double) async throws {
        try await wrapping.saveHeartbeat(studyID: studyID, elapsedSeconds: elapsedSeconds)
    }
    func deleteStudy(_ studyID: Int64) async throws { try await wrapping.deleteStudy(studyID) }
    func saveDefinition(_ definition: StudyDefinition, taskSource: String?, studyID: Int64) async throws {
        try await wrapping.saveDefinition(definition, taskSource: taskSource, studyID: studyID)
    }
    func saveStatus(_ status: StudyStatus, studyID: Int64, runner: RunnerIdentity?, elapsedSeconds: Double)
        async throws
    {
        try await wrapping.saveStatus(status, studyID: studyID, runner: runner, elapsedSeconds: elapsedSeconds)
    }
    func leaseGPUs(
        _ count: Int, among candidates: [Int], holder: LeaseHolder, isAlive: @escaping @Sendable (LeaseHolder) -> Bool
    )
        async throws -> [Int]?
    {
        try await wrapping.leaseGPUs(count, among: candidates, holder: holder, isAlive: isAlive)
    }
    func reservePort(
        in range: ClosedRange<Int>, holder: LeaseHolder, isAlive: @escaping @Sendable (LeaseHolder) -> Bool,
        isBindable: @escaping @Sendable (Int) -> Bool
    ) async throws -> Int? {
        try await wrapping.reservePort(in: range, holder: holder, isAlive: isAlive, isBindable: isBindable)
    }
    func release(_ holder: LeaseHolder) async throws { try await wrapping.release(holder) }
    func leases(host: String) async throws -> [ResourceLease] { try await wrapping.leases(host: host) }
}

@Suite struct SQLiteStudyStoreTests {
    /// The contract every store keeps, on a real file.
    @Test func keepsTheStoreContract() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-store-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStudyStore(path: directory.appendingPathComponent("studies.sqlite").path)
        let problems = await StudyStoreConformance(store).run()
        #expect(problems.isEmpty, "\(problems)")
    }

    /// The in-memory store of AutotuneTesting keeps the same contract, shared-study checks included, so tests of
    /// workers can rely on it.
    @Test func theInMemoryStoreKeepsTheSharedContract() async throws {
        let problems = await StudyStoreConformance(InMemoryStudyStore()).runShared()
        #expect(problems.isEmpty, "\(problems)")
    }

    /// The suite finds a store that loses what it is given.
    @Test func theSuiteCatchesAStoreThatBreaksTheContract() async throws {
        let problems = await StudyStoreConformance(ForgetfulStore(wrapping: try SQLiteStudyStore.inMemory())).run()
        #expect(problems.contains("an ask's checkpoint is not saved with its trials"))
        #expect(problems.contains("a finished trial does not read back field for field"))
    }

    @Test func aFileStoreUsesWALAndIndexesTrialsByState() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-store-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteStudyStore(path: directory.appendingPathComponent("nested/study.sqlite").path)
        let mode = try await store.database.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let indexes = try await store.database.read { db in try db.indexes(on: "trials").map(\.columns) }
        #expect(indexes.contains(["study_id", "state"]))
        #expect(indexes.contains(["study_id", "number"]))
    }

    /// A file written by the release before (schema v5: no start marks) opens, migrates, and keeps its study
    /// and runner; the start mark is recorded from then on.
    @Test func aDatabaseOfTheSchemaBeforeMigratesAndKeepsItsStudies() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-store-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("old.sqlite").path
        do {
            let old = try DatabaseQueue(path: path)
            try SQLiteStudyStore.migrator.migrate(old, upTo: "v5: confirmation runs")
            let definition = try TrialRecord.json(StudyStoreConformance<SQLiteStudyStore>.definition("old"))
            try await old.write { db in
                try db.execute(
                    sql: """
                        INSERT INTO studies (name, definition, status, runner_host, runner_pid, created_at, updated_at)
                        VALUES ('old', ?, 'running', 'h', 42, ?, ?)
                        """, arguments: [definition, Date(), Date()])
            }
        }
        let store = try SQLiteStudyStore(path: path, mode: .existing)
        let study = try #require(try await store.study(named: "old"))
        #expect(study.runner == RunnerIdentity(host: "h", pid: 42))
        #expect(study.status == .running)
        let runner = RunnerIdentity(host: "h", pid: 43, started: "boot:7")
        try await store.saveStatus(.running, studyID: study.id, runner: runner, elapsedSeconds: 1)
        #expect(try await store.study(named: "old")?.runner == runner)
    }

    /// Another process holding the file's write lock past the wait (someone's `sqlite3` in a transaction) fails
    /// the write with a message saying so, and what was recorded before is still there afterwards.
    @Test func aLockHeldTooLongIsNamedAndLosesNothing() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("autotune-store-\(UUID())")
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("study.sqlite").path
        let store = try SQLiteStudyStore(path: path, busyTimeout: 0.2)
        let study = try await store.createStudy(
            StudyStoreConformance<SQLiteStudyStore>.definition("locked"), taskSource: nil)
        let other = try DatabaseQueue(path: path)
        let held = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let holder = Thread {
            try? other.inTransaction(.exclusive) { _ in
                held.signal()
                release.wait()
                return .commit
            }
        }
        holder.start()
        held.wait()
        var message = ""
        do {
            try await store.saveStatus(.interrupted, studyID: study.id, runner: nil, elapsedSeconds: 1)
        } catch let error as AutotuneError {
            message = error.message
        }
        release.signal()
        #expect(message.contains("study.sqlite stayed locked by another process"), "\(message)")
        #expect(message.contains("autotune resume"), "\(message)")
        try await store.saveStatus(.interrupted, studyID: study.id, runner: nil, elapsedSeconds: 2)
        #expect(try await store.study(named: "locked")?.elapsedSeconds == 2)
    }
}
