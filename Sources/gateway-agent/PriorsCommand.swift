import ArgumentParser
import Foundation
import GatewayAgent
import ImagingIndex
import PatientTokens

struct Priors: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Before ordering an examination: has the patient had the same one recently, in any region?",
        discussion: """
            Exit status 0 when no prior matches, 4 when the planned examination is a repeat candidate (the
            priors are printed with where to open them).
            """)
    @OptionGroup var options: ConfigOption
    @Option(help: "Resident ID (18 characters or 15 digits).") var residentId: String
    @Option(help: "The planned examination's DICOM modality (CT, MR, DX, …).") var modality: String
    @Option(help: "Body part (DICOM Body Part Examined, e.g. CHEST).") var bodyPart: String?
    @Option(help: "Exam item code.") var examItem: String?
    @Option(help: "Window in days (default: the node's per modality).") var days: Int?
    @Option(help: "HL7 purpose of use.") var purpose = "TREAT"
    @Flag(help: "Print JSON.") var json = false

    func run() async throws {
        let config = try options.load()
        let identity: TokenInput
        do {
            identity = try TokenInput.residentID(residentId)
        } catch {
            throw ValidationError("resident ID: \(error)")
        }
        var planned = PriorExamCheck.Planned(modality: modality.uppercased())
        planned.bodyPart = bodyPart?.uppercased()
        planned.examItem = examItem
        planned.days = days
        let answer = try await report {
            var check = PriorExamCheck(config: config)
            check.purpose = purpose
            return try await check.run(identity, planned)
        }
        if json {
            let priors = answer.priors.map { "{\"ageDays\":\($0.ageDays),\"study\":\($0.study.jsonText)}" }
            print("{\"verdict\":\"\(answer.verdict)\",\"windowDays\":\(answer.windowDays),\"priors\":[\(priors.joined(separator: ","))]}")
        } else {
            print("\(answer.verdict): \(answer.priors.count) matching studies within \(answer.windowDays) days")
            for p in answer.priors {
                let s = p.study
                print("  \(p.ageDays) days ago\t\(s.studyDate)\t\(s.modalitiesInStudy.joined(separator: "\\"))\t\(s.bodyPartExamined ?? "")\t"
                      + "\(s.institutionName ?? s.storageUnit)\tregion \(s.region)\t\(s.retrieveURL)")
            }
        }
        if answer.verdict == "repeat-candidate" { throw ExitCode(4) }
    }
}
