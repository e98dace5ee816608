public import Autotune
import Foundation
import Subprocess

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// Finds the machine's GPUs with `nvidia-smi`.
public enum GPUDiscovery {
    /// What discovery found: the GPUs, or why there are none.
    public struct Result: Sendable {
        /// The GPUs, empty when `nvidia-smi` is missing or fails.
        public var gpus: [GPU]
        /// Why the list is empty, for a message; `nil` when GPUs were found.
        public var note: String?

        /// Creates a result.
        public init(gpus: [GPU], note: String?) {
            self.gpus = gpus
            self.note = note
        }
    }

    /// Runs `nvidia-smi --query-gpu=… --format=csv,noheader,nounits` (or `executable`).
    ///
    /// A missing or failing `nvidia-smi` means no GPUs, not an error: the machine may have none, and the task
    /// file or `--gpus` can declare them.
    public static func discover(executable: String = "nvidia-smi") async -> Result {
        do {
            let result = try await Subprocess.run(
                executable.contains("/") ? .path(FilePath(executable)) : .name(executable),
                arguments: Arguments(NvidiaSMI.queryArguments),
                output: .string(limit: 1 << 20),
                error: .string(limit: 1 << 16)
            )
            guard result.terminationStatus.isSuccess else {
                let message = result.standardError.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
                return Result(gpus: [], note: "nvidia-smi failed (\(result.terminationStatus)): \(message)")
            }
            let gpus = try NvidiaSMI.parseGPUs(result.standardOutput)
            return Result(gpus: gpus, note: gpus.isEmpty ? "nvidia-smi lists no GPU" : nil)
        } catch let error as NvidiaSMIError {
            return Result(gpus: [], note: error.description)
        } catch {
            return Result(gpus: [], note: "nvidia-smi is not available (\(error))")
        }
    }
}

/// Where the GPUs a runner may lease come from: `nvidia-smi` on a real machine, a fixed list in tests
/// (`FixedGPUInventory` in AutotuneTesting) or wherever an embedder keeps its inventory.
public protocol GPUInventory: Sendable {
    /// The GPUs there are now, or why there are none.
    func discover() async -> GPUDiscovery.Result
}

/// The GPUs `nvidia-smi` lists.
public struct NvidiaSMIInventory: GPUInventory {
    /// The program run, `nvidia-smi` on `PATH` by default.
    public var executable: String

    /// Creates the inventory.
    public init(executable: String = "nvidia-smi") { self.executable = executable }

    /// Runs `nvidia-smi`.
    public func discover() async -> GPUDiscovery.Result {
        await GPUDiscovery.discover(executable: executable)
    }
}
