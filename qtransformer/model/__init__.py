"""The method: the Q-Transformer network, its losses and Bellman targets, agent and policy.

- tokenizer.py: continuous actions <-> one bin per dimension;
- history.py: the window of the last W observations the network reads;
- image_encoder.py, transformer.py, network.py: the autoregressive Q network;
- losses.py: value-distribution targets and losses (HL-Gauss, two-hot, C51, MSE);
- targets.py: per-dimension Bellman targets and the conservative regulariser;
- agent.py: the train step (a tf_agents TFAgent); policy.py: greedy decoding (a TFPolicy).
"""
