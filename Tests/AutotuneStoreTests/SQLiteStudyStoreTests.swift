import Autotune
import AutotuneStore
import Foundation
import GRDB
import Testing

private func definition(_ name: String = "s") throws -> StudyDefinition {
    StudyDefinition(
        name: name,
        space: try SearchSpace([Parameter("n", .int(lower: 1, upper: 8)), Parameter("x", .float(lower: 0, upper: 1))]),
        objective: .maximize("score"),
        strategy: StrategySpec(name: "random"),
        budget: Budget(maxTrials: 10),
        experiment: .command(CommandSpec(command: [Template("true")]))
    )
}

@Suite struct SQLiteStudyStoreTests {
    @Test func studiesRoundTripAndNamesAreUnique() async throws {
        let store = try SQLiteStudyStore(database: DatabaseQueue())
        let created = try await store.createStudy(try definition(), taskSource: "name: s")
        let loaded = try #require(try await store.study(named: "s"))
        #expect(loaded.id == created.id)
        #expect(loaded.definition == (try definition()))
        #expect(loaded.taskSource == "name: s")
        #expect(loaded.status == .running)
        await #expect(throws: StoreError.studyExists("s")) {
            try await store.createStudy(try definition(), taskSource: nil)
        }
        #expect(try await store.study(named: "other") == nil)
    }

    @Test func trialsCheckpointsAndTheBestAreSavedTogether() async throws {
        let store = try SQLiteStudyStore(database: DatabaseQueue())
        let study = try await store.createStudy(try definition(), taskSource: nil)
        var trial = Trial(number: 0, configuration: Configuration(["n": .int(3), "x": .double(0.25)]))
        trial.state = .running
        trial.attempt = 1
        trial.startedAt = Date(timeIntervalSince1970: 1_000)
        try await store.saveLaunched([trial], studyID: study.id, checkpoint: Data("after-ask".utf8))
        #expect(try await store.trials(ofStudy: study.id) == [trial])

        trial.state = .completed
        trial.metrics = ["score": 2.5, "wall_time": 0.1]
        trial.timings = ["run": 0.1]
        trial.score = 2.5
        trial.finishedAt = Date(timeIntervalSince1970: 1_001)
        try await store.saveFinished(
            trial,
            studyID: study.id,
            checkpoint: Data("after-tell".utf8),
            best: BestTrial(number: 0, score: 2.5),
            elapsedSeconds: 12
        )
        let stored = try #require(try await store.study(named: "s"))
        #expect(stored.checkpoint == Data("after-tell".utf8))
        #expect(stored.best == BestTrial(number: 0, score: 2.5))
        #expect(stored.elapsedSeconds == 12)
        #expect(try await store.trials(ofStudy: study.id) == [trial])
    }

    @Test func failuresKeepTheirStageAndMessage() async throws {
        let store = try SQLiteStudyStore(database: DatabaseQueue())
        let study = try await store.createStudy(try definition(), taskSource: nil)
        var trial = Trial(number: 4, configuration: Configuration(["n": .int(1), "x": .double(0)]))
        trial.state = .failed
        trial.error = TrialError(stage: .run, message: "exit status 3; last output:\nboom")
        try await store.saveFinished(trial, studyID: study.id, checkpoint: nil, best: nil, elapsedSeconds: 1)
        let loaded = try #require(try await store.trials(ofStudy: study.id).first)
        #expect(loaded.error == trial.error)
        #expect(loaded.state == .failed)
    }

    @Test func statusAndRunnerAreRecorded() async throws {
        let store = try SQLiteStudyStore(database: DatabaseQueue())
        let study = try await store.createStudy(try definition(), taskSource: nil)
        try await store.saveStatus(
            .interrupted, studyID: study.id, runner: RunnerIdentity(host: "h", pid: 42), elapsedSeconds: 3)
        var loaded = try #require(try await store.study(named: "s"))
        #expect(loaded.status == .interrupted)
        #expect(loaded.runner == RunnerIdentity(host: "h", pid: 42))
        try await store.saveStatus(.completed, studyID: study.id, runner: nil, elapsedSeconds: 4)
        loaded = try #require(try await store.study(named: "s"))
        #expect(loaded.runner == nil)
        #expect(loaded.elapsedSeconds == 4)
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
}
