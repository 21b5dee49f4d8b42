"""Solutions: named sets of components that move between environments."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from credflow.domain.errors import NotFound
from credflow.persistence.tables import Solution, SolutionComponent


def find_solution(s: Session, env_id: str, ref: str) -> Solution:
    sol = s.scalar(select(Solution).where(Solution.env_id == env_id, Solution.unique_name == ref))
    if sol is None:
        sol = s.get(Solution, ref)
    if sol is None or sol.env_id != env_id:
        raise NotFound(f"solution {ref!r} not found", code="solution_not_found")
    return sol


def attach_to_solution(s: Session, env_id: str, solution: str, component_type: str, component_id: str) -> None:
    sol = find_solution(s, env_id, solution)
    if s.get(SolutionComponent, (sol.id, component_type, component_id)) is None:
        s.add(SolutionComponent(solution_id=sol.id, component_type=component_type, component_id=component_id))
