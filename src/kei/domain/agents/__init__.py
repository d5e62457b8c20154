"""Agent work: the rules a fork, finish, failure or merge must pass, agent state, the tree
order, DNA, money and skill metrics.
"""
