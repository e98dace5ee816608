import Autotune
import AutotuneRunner
import Foundation
import Testing

private func fixture(_ name: String) throws -> Data {
    try Data(
        contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../AutotuneTests/Fixtures/nvidia-smi/\(name)").standardizedFileURL
    )
}

@Suite(.timeLimit(.minutes(5))) struct NvidiaSMIXMLTests {
    @Test func aBusyGPUAndItsProcess() throws {
        let (gpus, processes) = try NvidiaSMIXML.parse(try fixture("q-busy.xml"))
        #expect(
            gpus == [
                GPU(
                    index: 0,
                    uuid: "GPU-3db92102-aa80-a303-739b-1e41441b63a5",
                    name: "NVIDIA H100 80GB HBM3",
                    memoryTotalMiB: 81559,
                    memoryUsedMiB: 1139,
                    memoryFreeMiB: 79941,
                    utilizationPercent: 100
                )
            ])
        #expect(
            processes == [
                GPUProcess(
                    pid: 409, name: "python3", usedMemoryMiB: 1130, gpuUUID: "GPU-3db92102-aa80-a303-739b-1e41441b63a5")
            ])
    }

    @Test func anIdleGPUHasNoProcess() throws {
        let (gpus, processes) = try NvidiaSMIXML.parse(try fixture("q-idle.xml"))
        #expect(gpus.map(\.memoryFreeMiB) == [81079])
        #expect(gpus.map(\.utilizationPercent) == [0])
        #expect(processes.isEmpty)
    }

    @Test func brokenXMLIsAnError() {
        #expect(throws: NvidiaSMIError.self) { try NvidiaSMIXML.parse(Data("<nvidia_smi_log><gpu>".utf8)) }
    }
}
