import Autotune
import AutotuneApp
import AutotuneRunner
import AutotuneStore
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// The dashboard's routes, driven in process: no binary, no port, no browser.
@Suite struct DashboardRouterTests {
    /// A study of three finished trials run for real (a shell command per trial) in `directory`'s database.
    private func study(in directory: URL) async throws -> (location: StoreLocation, study: StoredStudy) {
        let loaded = try task(
            """
            name: live
            parameters: {n: [1, 2, 3]}
            objective: {maximize: score}
            strategy: {name: grid, order: declared}
            experiment:
              command: [/bin/sh, -c, 'echo working on {n}; echo "{{\\"score\\": {n}}}" > {trial_dir}/result.json; echo "{{\\"score\\": {n}}}"', x]
            """, in: directory)
        let location = StoreLocation(flag: directory.appendingPathComponent("autotune.sqlite").path)
        let stored = try await location.withStore(.create) { store in
            let study = try await store.createStudy(loaded.definition, taskSource: loaded.source)
            let session = await StudySession(
                study: study, store: store, location: location, settings: RunSettings(workingDirectory: directory))
            _ = try await session.run(try await session.makeLoop())
            return try #require(try await store.study(named: "live"))
        }
        return (location, stored)
    }

    private func withDashboard(
        _ directory: URL, _ body: @escaping @Sendable (StoreLocation, any TestClientProtocol) async throws -> Void
    ) async throws {
        let (location, _) = try await study(in: directory)
        try await location.withStore(.readOnly) { store in
            let router = Dashboard.buildRouter(
                store: store, trialsDirectory: location.trialsDirectory, databaseName: location.displayPath)
            let app = Application(responder: router.buildResponder())
            try await app.test(.router) { client in try await body(location, client) }
        }
    }

    private func text(_ response: TestResponse) -> String { String(buffer: response.body) }

    @Test func theStudiesPageAndItsPolledTableListEveryStudyWithItsBest() async throws {
        try await withDirectory { directory in
            try await withDashboard(directory) { _, client in
                try await client.execute(uri: "/", method: .get) { response in
                    #expect(response.status == .ok)
                    let page = text(response)
                    #expect(page.contains("<div id=\"studies\">") && page.contains("fetch('/studies'"))
                    #expect(page.contains("href=\"/study/live\""), "the page lists the study")
                }
                try await client.execute(uri: "/studies", method: .get) { response in
                    #expect(response.status == .ok)
                    let fragment = text(response)
                    #expect(fragment.contains(">live</a>") && fragment.contains("<td>completed</td>"), "\(fragment)")
                    #expect(fragment.contains("3 (#2)"), "the best is trial 2's score 3: \(fragment)")
                }
            }
        }
    }

    @Test func aStudyAndItsTrialsHavePagesAndWhatIsMissingIsA404() async throws {
        try await withDirectory { directory in
            try await withDashboard(directory) { _, client in
                try await client.execute(uri: "/study/live", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(text(response).contains("data-chart=\"history\""))
                }
                try await client.execute(uri: "/study/live/trial/1", method: .get) { response in
                    #expect(response.status == .ok)
                    let page = text(response)
                    #expect(page.contains("working on 2"), "the tail of the trial's log: \(page)")
                    #expect(page.contains("Configuration") && page.contains("<th>n</th><td>2</td>"))
                }
                try await client.execute(uri: "/study/nosuch", method: .get) { response in
                    #expect(response.status == .notFound)
                    #expect(text(response).contains("no study named &#39;nosuch&#39;"))
                }
                try await client.execute(uri: "/study/live/trial/99", method: .get) { response in
                    #expect(response.status == .notFound)
                }
            }
        }
    }

    @Test func aTrialsFilesAreServedAndNothingOutsideItsDirectory() async throws {
        try await withDirectory { directory in
            try await withDashboard(directory) { location, client in
                try await client.execute(uri: "/study/live/trial/2/file/result.json", method: .get) { response in
                    #expect(response.status == .ok)
                    #expect(text(response).contains("\"score\": 3"))
                }
                // The database sits two levels above a trial's directory: a traversal would reach it.
                for name in ["..%2F..%2F..%2Fautotune.sqlite", "%2E%2E", "..", "outside"] {
                    try await client.execute(uri: "/study/live/trial/2/file/\(name)", method: .get) { response in
                        #expect(response.status == .notFound, "\(name)")
                        #expect(!text(response).contains("SQLite format"), "\(name) read the database")
                    }
                }
                // A link inside the directory that leads out of it is not followed.
                let trialDirectory = location.trialsDirectory.appendingPathComponent("live/2")
                try FileManager.default.createSymbolicLink(
                    at: trialDirectory.appendingPathComponent("outside"),
                    withDestinationURL: URL(fileURLWithPath: location.path))
                try await client.execute(uri: "/study/live/trial/2/file/outside", method: .get) { response in
                    #expect(response.status == .notFound)
                    #expect(!text(response).contains("SQLite format"))
                }
            }
        }
    }

    @Test func theVersionAnswersAsSoonAsATrialFinishes() async throws {
        try await withDirectory { directory in
            let (location, study) = try await study(in: directory)
            try await location.withStore(.create) { store in
                let router = Dashboard.buildRouter(
                    store: store, trialsDirectory: location.trialsDirectory, databaseName: location.displayPath)
                let app = Application(responder: router.buildResponder())
                try await app.test(.router) { client in
                    let before = try await client.execute(uri: "/study/live/version?wait=0.25", method: .get) {
                        String(String(buffer: $0.body).split(separator: "\n")[0])
                    }
                    #expect(before == "3-3-completed")
                    // A long poll for a change, while another trial starts and finishes.
                    async let changed = client.execute(
                        uri: "/study/live/version?wait=25&after=\(before)", method: .get
                    ) { String(String(buffer: $0.body).split(separator: "\n")[0]) }
                    var trial = Trial(number: 3, configuration: Configuration(["n": .int(1)]))
                    trial.state = .running
                    trial.startedAt = Date()
                    try await store.saveLaunched([trial], studyID: study.id, checkpoint: nil)
                    #expect(try await changed == "4-3-completed", "the poll saw the trial start")
                }
            }
        }
    }
}
