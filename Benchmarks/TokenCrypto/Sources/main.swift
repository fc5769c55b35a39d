import _CryptoExtras
import Foundation
import PatientTokens

// One thread, fixed time per case: server evaluations per second (ours in batches of 100
// with one proof, swift-crypto's P-384 one by one with a proof each), and the agent's
// blind + verify + finalize per token. Ratios are against swift-crypto in this same run.

let seconds = Double(CommandLine.arguments.dropFirst().first ?? "") ?? 5

func measure(_ name: String, perRound: Int, _ round: () throws -> Void) rethrows -> Double {
    try round()
    let start = ContinuousClock.now
    var rounds = 0
    while ContinuousClock.now - start < .seconds(seconds) {
        try round()
        rounds += 1
    }
    let elapsed = ContinuousClock.now - start
    let rate = Double(rounds * perRound) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    print(String(format: "%-52@ %10.0f /s", name as NSString, rate))
    return rate
}

let inputs = (0..<100).map { Array("imaging-gateway/v1/resident-id|61011319850312\(String(format: "%04d", $0))".utf8) }
let secret = try VOPRFServer.generateSecretKey()
let server = try VOPRFServer(secretKey: secret)
let client = try VOPRFClient(publicKey: server.publicKey)
let batch = try client.blind(inputs)
let (evaluated, proof) = try server.blindEvaluate(batch.blindedElements)

let ours = try measure("ours: server evaluations (P-256, batch 100)", perRound: 100) {
    _ = try server.blindEvaluate(batch.blindedElements)
}
let blinding = try measure("ours: agent blind (hash-to-curve, multiply)", perRound: 100) {
    _ = try client.blind(inputs)
}
let finalizing = try measure("ours: agent finalize (verify batch proof, unblind)", perRound: 100) {
    _ = try client.finalize(batch, evaluated: evaluated, proof: proof)
}
let agent = 1 / (1 / blinding + 1 / finalizing)
print(String(format: "%-52@ %10.0f /s", "ours: agent blind+verify+finalize per token" as NSString, agent))

let reference = P384._VOPRF.PrivateKey()
let referenceInput = try reference.publicKey.blind(Data(inputs[0]))
let theirs = try measure("swift-crypto: server evaluations (P384._VOPRF)", perRound: 1) {
    _ = try reference.evaluate(referenceInput.blindedElement)
}
let referenceEvaluation = try reference.evaluate(referenceInput.blindedElement)
let theirsBlind = try measure("swift-crypto: agent blind (P384._VOPRF)", perRound: 1) {
    _ = try reference.publicKey.blind(Data(inputs[1]))
}
let theirsFinalize = try measure("swift-crypto: agent finalize (P384._VOPRF)", perRound: 1) {
    _ = try reference.publicKey.finalize(referenceInput, using: referenceEvaluation)
}
let theirsAgent = 1 / (1 / theirsBlind + 1 / theirsFinalize)
print(String(format: "ratio server evaluations ours/swift-crypto: %.1f×", ours / theirs))
print(String(format: "ratio agent round trip ours/swift-crypto: %.1f×", agent / theirsAgent))
