"""Model export: a loaded model turned into what another runtime runs (ONNX, torch.export, CTranslate2).

The methods (``accelbench.methods``) build their variants on these exports and the runtimes that run them.
"""
